//! Synthetic data (to be written).
