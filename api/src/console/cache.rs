//! The outbox overview shared by every console and scrape for a short while: N consoles polling cost one
//! computation per interval, not N. What is kept is the store seen whole (every sender's loads, the lists
//! before any client's filter); each answer is then cut to what its caller may see, so one client's view
//! is never served to another. An action (retry, cancel, an inbox outcome) drops it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mss_outbox::overview::{BatchSummary, BusinessAckLoad, RateBucket, RecipientLine, SenderLoad};
use mss_outbox::{Pause, State as RecipientState, Store};

/// How long a computed overview answers: the console refreshes every few seconds, so a second's age is
/// invisible, and any number of open consoles cost at most one computation a second.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(1);

/// The last hour, by minute: the rate chart.
pub(crate) const RATE_WINDOW_MS: i64 = 3_600_000;
pub(crate) const RATE_BUCKET_MS: i64 = 60_000;
/// Rows of each list kept: the most any caller may ask for, so that a limited client's own rows are
/// still there after the filter.
pub(crate) const MAX_ROWS: u64 = 500;

/// The store seen whole at one moment.
#[derive(Debug)]
pub(crate) struct StoreOverview {
    /// The store's time when it was read.
    pub now_ms: i64,
    pub loads: Vec<SenderLoad>,
    pub paused: Vec<Pause>,
    pub rate: Vec<RateBucket>,
    pub batches: Vec<BatchSummary>,
    pub troubles: Vec<RecipientLine>,
    pub latest: Vec<RecipientLine>,
    pub business_acks: Vec<BusinessAckLoad>,
}

impl StoreOverview {
    async fn read(store: &dyn Store) -> mss_outbox::Result<Self> {
        let now_ms = store.now_ms();
        let (loads, paused, rate, batches, troubles, latest, business_acks) = tokio::try_join!(
            store.sender_loads(),
            store.paused(),
            store.rates(now_ms - RATE_WINDOW_MS, RATE_BUCKET_MS),
            store.recent_batches(MAX_ROWS),
            store.recipients_in(
                &[RecipientState::Failed, RecipientState::Deferred],
                MAX_ROWS
            ),
            store.recipients_in(&[], MAX_ROWS),
            store.business_ack_loads(),
        )?;
        Ok(StoreOverview {
            now_ms,
            loads,
            paused,
            rate,
            batches,
            troubles,
            latest,
            business_acks,
        })
    }
}

struct Taken {
    started: Instant,
    generation: u64,
    overview: Arc<StoreOverview>,
}

/// One overview computed at a time, answered to all who asked meanwhile.
#[derive(Default)]
pub(crate) struct OverviewCache {
    /// Bumped by every action: an overview read before it is not answered again.
    generation: AtomicU64,
    /// Held while an overview is computed: the callers that arrive meanwhile wait for it rather than run
    /// the same queries (single flight).
    slot: tokio::sync::Mutex<Option<Taken>>,
}

impl std::fmt::Debug for OverviewCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverviewCache").finish_non_exhaustive()
    }
}

impl OverviewCache {
    /// The overview no older than [`FRESH_FOR`] nor than the last action, read now when there is none.
    pub(crate) async fn get(&self, store: &dyn Store) -> mss_outbox::Result<Arc<StoreOverview>> {
        let mut slot = self.slot.lock().await;
        // read after the lock: an action that ended while we waited is seen
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(t) = slot.as_ref()
            && t.generation == generation
            && t.started.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(&t.overview));
        }
        // the age counts from before the read: what changes during it is at most that old
        let started = Instant::now();
        let overview = Arc::new(StoreOverview::read(store).await?);
        *slot = Some(Taken {
            started,
            generation,
            overview: Arc::clone(&overview),
        });
        Ok(overview)
    }

    /// Something changed by hand: the next caller reads the store again.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
