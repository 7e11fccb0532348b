//! The release engine: `release new`, `continue` and `retry`.
//!
//! A release is a set of runs in the state store. The engine moves them
//! forward one durable transition at a time: a run is *claimed* with a
//! compare-and-swap from `pending` (or `paused`) to `running`, its function
//! is called, and the outcome (run document, status, logs, work document,
//! `@` link, tags) is committed as one transaction. Because every step is a
//! transaction against the store, any number of agents can work on the same
//! release: a run's outcome is recorded exactly once, by whoever claims it.
//! A claim is a lease (see `lease`): the agent renews it while the run
//! runs, and once it has expired (the agent died, froze or lost the store)
//! any other agent takes the run over, and the old holder's outcome is
//! refused.
//!
//! Phases run in order. A work item is ready when every item of every
//! earlier phase is complete and all its inputs resolve; ready items run
//! in parallel, at most `EngineContext::parallel` at once: on the calling
//! thread and `parallel - 1` worker threads (so [`Host`]
//! and [`Store`](crate::store::Store) are called from several threads). A
//! required input that does not exist yet leaves the item pending
//! (*blocked*), not failed.
//!
//! While a run runs, its log lines are written every half second to
//! `<run>/live_logs/<k>` (see `live`), so that other processes can follow
//! them; its outcome transaction writes `<run>/logs` and deletes those
//! chunks.

//!
//! ## Layers
//!
//! Each module imports only modules listed before it: the context and
//! documents at the bottom (`context`, `status`, `lease`, `inputs`,
//! `record`, `releases`), then runs and the scheduler (`live`, `run`, `scheduler`,
//! `report`, `deps`), then the operations (`intent`, `release`, `work`), then those
//! built on them (`cascade`, `plan`, `trigger`, `push`, `push_intent`).
//! What the operations return is in [`crate::model`].

// Documents and the context.
mod context;

mod status;

pub(crate) mod lease;

mod inputs;
pub(crate) mod record;
pub(crate) mod releases;

// Runs and the scheduler.
mod live;

mod run;

mod scheduler;

pub(crate) mod report;

mod deps;

// The operations.
pub(crate) mod intent;

pub(crate) mod release;

pub(crate) mod work;

// Built on the operations.
pub(crate) mod cascade;

pub(crate) mod plan;
pub(crate) mod push;
pub(crate) mod trigger;

pub(crate) mod push_intent;

pub(crate) use context::{EngineContext, Journal, Site};
