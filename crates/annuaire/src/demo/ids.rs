//! National identifiers with their check digits: RPPS, ADELI, FINESS, SIRET and cabinet numbers.

use std::fmt::Write as _;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::random::mix;

/// Luhn check digit to append to `digits` (RPPS, SIREN and SIRET use it).
pub(super) fn luhn_digit(digits: &str) -> u32 {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

/// `n ↦ (a·n + c) mod m`, a bijection of `0..m` when `a` is coprime with `m` (here `m` is a power of 10 and
/// `a` ends in 1), so that people numbered apart get different identifiers.
pub(super) fn scramble(n: u64, salt: u64, m: u64) -> u64 {
    ((n % m) * (2_654_435_761 % m) + salt % m) % m
}

/// RPPS: `10` + 8 digits + Luhn key, never repeated for the first 10⁸ people.
pub(super) fn rpps(seed: u64, n: u64) -> String {
    let body = scramble(n, mix(seed), 100_000_000);
    let mut id = String::with_capacity(11);
    // writing to a String cannot fail
    let _ = write!(id, "10{body:08}");
    let key = luhn_digit(&id);
    id.push(char::from(b'0' + key as u8));
    id
}

/// ADELI: the department number, a profession digit (2-digit departments), then a serial; 9 digits.
pub(super) fn adeli(seed: u64, n: u64, dept: &str, profession: &str) -> String {
    let dept = match dept {
        "2A" | "2B" => "20", // ADELI numbers are digits; Corsica keeps its former number
        d => d,
    };
    let serial_len = 9 - dept.len() - usize::from(dept.len() == 2);
    let modulus = 10u64.pow(serial_len as u32);
    let serial = scramble(n, mix(seed ^ 1), modulus);
    let prof_digit = if dept.len() == 2 {
        &profession[..1]
    } else {
        ""
    };
    format!("{dept}{prof_digit}{serial:0serial_len$}")
}

/// FINESS: 9 characters starting with the department (`2A`/`2B` for Corsica, 3 digits overseas).
pub(super) fn finess(r: &mut ChaCha8Rng, dept: &str) -> String {
    if dept.len() == 2 {
        format!("{dept}0{:06}", r.random_range(0..1_000_000))
    } else {
        format!("{dept}{:06}", r.random_range(0..1_000_000))
    }
}

/// SIRET: SIREN (8 digits + Luhn key) + NIC chosen so the 14 digits pass Luhn too.
pub(super) fn siret(r: &mut ChaCha8Rng) -> String {
    let head = format!("{:08}", r.random_range(10_000_000..100_000_000));
    let siren = format!("{head}{}", luhn_digit(&head));
    let nic = format!("{siren}000{}", r.random_range(1..10));
    let key = luhn_digit(&nic);
    format!("{nic}{key}")
}

/// Cabinet identifier (structure type 4): the founder's RPPS and a 2-digit rank. The spec does not give the
/// national format, so this only needs to be stable and plausible.
pub(super) fn cabinet_id(r: &mut ChaCha8Rng) -> String {
    let head = format!("10{:08}", r.random_range(0..100_000_000));
    format!("{head}{}{:02}", luhn_digit(&head), r.random_range(1..6))
}
