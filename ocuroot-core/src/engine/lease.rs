//! Claims are leases.
//!
//! An agent claims a run by replacing its `pending` (or `paused`) marker with
//! a `running` marker that names the agent and says when the claim expires:
//! [`EngineContext::lease`] after the claim, by the agent's clock. While the
//! run runs, the agent renews the leases of all the runs it holds in one
//! transaction ([`Leases::renew_if_due`]), each time a third of the lease
//! has passed, so a live agent's claims always have at least two thirds of
//! a lease to go.
//!
//! Another agent that finds a run `running` judges the claim
//! ([`judge`]): it may take the run over once the lease has expired by its
//! own clock, or at once when the holder's process is known to be gone
//! (same host, boot and PID namespace: see [`Host::agent_alive`]). Taking
//! over ([`take_over`]) marks the run `cancelled`, records who held it, who
//! took it, when and why, and creates the next run, pending, in one
//! transaction that also checks the claim is still the one judged: of two
//! agents taking over at once, one wins and the other moves on. The old
//! holder's outcome is refused when it comes (its run is no longer
//! `running`): that is the fence.
//!
//! Clocks: the expiry is written by the holder's clock and read by the
//! taker's. A renewing holder keeps its expiry two thirds of a lease ahead
//! of its own clock, so a taker whose clock runs ahead by less than that
//! (80 s with the default lease of 2 minutes) never takes over a live claim.
//!
//! [`Host::agent_alive`]: crate::host::Host::agent_alive

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::EngineContext;
use super::status::{Latest, RunRefs, load_statuses, replace_run, run_ref};
use crate::host::Agent;
use crate::model::{Event, RunStatus, StatusMarker, Takeover, Timestamp, parse_doc};
use crate::refs::{KeyedRef, Ref, WorkPath};
use crate::store::Durability;
use crate::{Error, Result};

/// The lease of a claim when `OCUROOT_RUN_LEASE` does not say: 2 minutes.
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(120);

/// The shortest lease accepted: renewals must have time to happen.
pub const MIN_RUN_LEASE: Duration = Duration::from_millis(300);

/// The longest lease accepted: a day (a dead agent's runs wait this long
/// for another agent; a live agent renews its leases however long its
/// work runs).
pub const MAX_RUN_LEASE: Duration = Duration::from_secs(24 * 3600);

/// Parse a lease length: a duration such as `90s`, `2m`, `1m30s` or
/// `500ms`, or a bare number of seconds (`30`, `2.5`).
pub fn parse_lease(text: &str) -> Result<Duration> {
    let text = text.trim();
    let bad = |why: &str| {
        Error::config(format!(
            "OCUROOT_RUN_LEASE={text:?}: {why}: give a duration such as 90s, 2m or 500ms"
        ))
    };
    let lease = match text.parse::<f64>() {
        Ok(seconds) if (0.0..1e9).contains(&seconds) => Duration::from_secs_f64(seconds),
        Ok(_) => return Err(bad("not a usable number of seconds")),
        Err(_) => humantime::parse_duration(text).map_err(|e| bad(&e.to_string()))?,
    };
    if lease < MIN_RUN_LEASE {
        return Err(bad(&format!(
            "shorter than {} ms",
            MIN_RUN_LEASE.as_millis()
        )));
    }
    if lease > MAX_RUN_LEASE {
        return Err(bad("longer than a day"));
    }
    Ok(lease)
}

/// What an agent makes of another agent's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The claim holds until `expires` (by the holder's clock).
    Held {
        /// When the lease expires.
        expires: Timestamp,
    },
    /// The lease expired (at `expired`; `None` when the marker says
    /// neither when it expires nor when it was claimed).
    Expired {
        /// When.
        expired: Option<Timestamp>,
    },
    /// The holder's process is known to be gone.
    Gone,
}

impl Verdict {
    /// Whether the run may be taken over.
    pub(crate) fn may_take_over(&self) -> bool {
        !matches!(self, Verdict::Held { .. })
    }

    /// Why it may be taken over (or, when held, until when it holds), for
    /// the record and for messages.
    pub(crate) fn reason(&self) -> String {
        match self {
            Verdict::Held { expires } => format!("its lease runs until {expires}"),
            Verdict::Expired { expired: Some(t) } => format!("its lease expired at {t}"),
            Verdict::Expired { expired: None } => "its claim records no lease".to_string(),
            Verdict::Gone => "its agent's process is gone".to_string(),
        }
    }
}

/// When `marker`'s lease expires: as it says, else (written before leases)
/// a lease's length after the claim.
fn expiry(ctx: &EngineContext, marker: &StatusMarker) -> Option<Timestamp> {
    marker.expires.or_else(|| {
        marker
            .since
            .map(|since| Timestamp::new(since.system_time() + ctx.lease))
    })
}

/// Judge the claim a `running` marker records, now.
pub(crate) fn judge(ctx: &EngineContext, marker: &StatusMarker) -> Verdict {
    if let Some(agent) = &marker.agent
        && ctx.host.agent_alive(agent) == Some(false)
    {
        return Verdict::Gone;
    }
    match expiry(ctx, marker) {
        Some(expires) if ctx.now() <= expires.system_time() => Verdict::Held { expires },
        expired => Verdict::Expired { expired },
    }
}

/// The `running` marker of run `n` of `path`, if it is running.
pub(crate) fn running_marker(
    ctx: &EngineContext,
    rel: &Ref,
    path: &WorkPath,
    n: u32,
) -> Result<Option<StatusMarker>> {
    let refs = RunRefs::new(&run_ref(rel, path, n))?;
    let marker = refs.marker(RunStatus::Running)?;
    ctx.state
        .get(marker)?
        .map(|doc| parse_doc(marker, "status marker", doc))
        .transpose()
}

/// "agent h pid 1": who holds a claim, for messages.
pub(crate) fn holder(marker: &StatusMarker) -> String {
    marker
        .agent
        .as_ref()
        .map_or_else(|| "an unknown agent".to_string(), Agent::to_string)
}

/// "task/x (agent h pid 1, lease until T)": a claim for messages.
pub(crate) fn describe_claim(path: &WorkPath, marker: &StatusMarker, verdict: &Verdict) -> String {
    let who = holder(marker);
    match verdict {
        Verdict::Held { expires } => format!("{path} ({who}, lease until {expires})"),
        other => format!("{path} ({who}; {})", other.reason()),
    }
}

/// A run taken over: the run that replaces it and the record.
#[derive(Debug, Clone)]
pub(crate) struct TakenOver {
    /// The new run's number.
    pub run: u32,
    /// What was recorded on the old run.
    pub takeover: Takeover,
}

/// Take over the running run `n` of `path` in `rel`: mark it `cancelled`
/// with the takeover recorded and create run `n + 1`, pending, with the
/// same function and inputs, in one transaction. Unless `broken` (a person
/// breaks the claim), the claim is judged again inside the transaction, so
/// a claim renewed meanwhile is left alone. `None` when there is nothing to
/// take over any more: the run finished, another agent took it over, or its
/// lease was renewed.
pub(crate) fn take_over(
    ctx: &EngineContext,
    rel: &Ref,
    path: &WorkPath,
    n: u32,
    broken: bool,
) -> Result<Option<TakenOver>> {
    let old = RunRefs::new(&run_ref(rel, path, n))?;
    let new = KeyedRef::new(run_ref(rel, path, n + 1))?;
    let me = ctx.host.agent();
    let taken = ctx.state.update(|tx| {
        let running = old.marker(RunStatus::Running)?;
        tx.prefetch(&[running, &old.run, &new])?;
        let Some(doc) = tx.get(running)? else {
            return Ok(None);
        };
        let marker: StatusMarker = parse_doc(running, "status marker", doc)?;
        let reason = if broken {
            format!(
                "a person broke the claim (release takeover by {me}); {}",
                judge(ctx, &marker).reason()
            )
        } else {
            let verdict = judge(ctx, &marker);
            if !verdict.may_take_over() {
                return Ok(None);
            }
            verdict.reason()
        };
        if tx.exists(&new)? {
            return Ok(None);
        }
        let takeover = Takeover {
            holder: marker.agent.clone(),
            by: me.clone(),
            at: ctx.timestamp(),
            reason,
        };
        replace_run(
            tx,
            &old,
            (RunStatus::Running, RunStatus::Cancelled),
            StatusMarker {
                time: Some(takeover.at),
                taken_over: Some(takeover.clone()),
                ..StatusMarker::default()
            },
            &new,
        )?;
        Ok(Some(TakenOver {
            run: n + 1,
            takeover,
        }))
    })?;
    if let Some(t) = &taken {
        ctx.journal.record(&new);
        tracing::warn!(
            run = %old.run,
            holder = ?t.takeover.holder,
            reason = %t.takeover.reason,
            "took over a claimed run"
        );
        ctx.emit(|| Event::RunTakenOver {
            release: rel.clone(),
            work: path.clone(),
            run: n,
            new_run: t.run,
            holder: t.takeover.holder.clone(),
            reason: t.takeover.reason.clone(),
        });
    }
    Ok(taken)
}

/// Take over every run that `statuses` (the latest run of each work item of
/// `rel`) says is running and whose claim may be taken over, except those
/// of the work items in `skip` (the session's own). `statuses` then names
/// the new, pending runs; if another agent acted on one first, every status
/// is read again.
pub(crate) fn take_over_abandoned(
    ctx: &EngineContext,
    rel: &Ref,
    statuses: &mut BTreeMap<WorkPath, Latest>,
    skip: &HashSet<WorkPath>,
) -> Result<()> {
    let running: Vec<(WorkPath, u32)> = statuses
        .iter()
        .filter(|(path, l)| l.status == RunStatus::Running && !skip.contains(*path))
        .map(|(path, l)| (path.clone(), l.run))
        .collect();
    let mut raced = false;
    for (path, n) in running {
        let Some(marker) = running_marker(ctx, rel, &path, n)? else {
            raced = true;
            continue;
        };
        if !judge(ctx, &marker).may_take_over() {
            continue;
        }
        match take_over(ctx, rel, &path, n, false)? {
            Some(t) => {
                statuses.insert(
                    path,
                    Latest {
                        run: t.run,
                        status: RunStatus::Pending,
                    },
                );
            }
            None => raced = true,
        }
    }
    if raced {
        *statuses = load_statuses(&ctx.state, rel)?;
    }
    Ok(())
}

/// The claims one scheduling session holds, renewed together.
pub(crate) struct Leases {
    /// By run key: the running marker's ref and the claim as last written.
    held: Mutex<BTreeMap<String, (KeyedRef, StatusMarker)>>,
    /// When the leases were last renewed (or the first was taken).
    renewed: Mutex<Instant>,
    /// A third of the lease: how often they are renewed.
    every: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Leases {
    /// No claims yet, for leases of `lease`.
    pub(crate) fn new(lease: Duration) -> Leases {
        Leases {
            held: Mutex::new(BTreeMap::new()),
            renewed: Mutex::new(Instant::now()),
            every: lease / 3,
        }
    }

    /// How often the session's ticker should look: often enough that a
    /// renewal is never much later than due.
    pub(crate) fn tick(&self) -> Duration {
        (self.every / 2).max(Duration::from_millis(20))
    }

    /// The marker a new claim writes: this agent, now, expiring a lease
    /// from now.
    pub(crate) fn claim_marker(ctx: &EngineContext) -> StatusMarker {
        let now = ctx.now();
        StatusMarker {
            agent: Some(ctx.host.agent()),
            since: Some(Timestamp::new(now)),
            expires: Some(Timestamp::new(now + ctx.lease)),
            ..StatusMarker::default()
        }
    }

    /// A claim was committed: renew it from now on.
    pub(crate) fn hold(&self, run: &KeyedRef, marker: KeyedRef, claim: StatusMarker) {
        let mut held = lock(&self.held);
        if held.is_empty() {
            // The first claim was just written: the next renewal is due a
            // third of a lease from now.
            *lock(&self.renewed) = Instant::now();
        }
        held.insert(run.key().to_string(), (marker, claim));
    }

    /// The run's outcome is about to be committed: stop renewing it.
    /// Returns the claim as last written (with its expiry).
    pub(crate) fn release(&self, run: &KeyedRef) -> Option<StatusMarker> {
        lock(&self.held).remove(run.key()).map(|(_, claim)| claim)
    }

    /// Renew every claim held, in one transaction, when a third of the lease
    /// has passed since the last renewal. A claim no longer this agent's
    /// (taken over) is dropped, with a warning: its outcome will be
    /// refused. Failures are logged; the next tick tries again.
    pub(crate) fn renew_if_due(&self, ctx: &EngineContext) {
        if lock(&self.renewed).elapsed() < self.every {
            return;
        }
        let held: Vec<(String, KeyedRef, StatusMarker)> = lock(&self.held)
            .iter()
            .map(|(k, (m, c))| (k.clone(), m.clone(), c.clone()))
            .collect();
        if held.is_empty() {
            return;
        }
        match renew(ctx, &held) {
            Ok((renewed, lost)) => {
                *lock(&self.renewed) = Instant::now();
                let mut current = lock(&self.held);
                for (key, claim) in renewed {
                    if let Some(entry) = current.get_mut(&key) {
                        entry.1 = claim;
                    }
                }
                for key in lost {
                    // Gone from the set already: its outcome was committed.
                    if current.remove(&key).is_some() {
                        tracing::warn!(
                            run = %key,
                            "another agent took this run over while this agent ran it: its \
                             outcome will not be recorded"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the leases of running runs"),
        }
    }
}

/// The renewal transaction: each claim still this agent's gets a new
/// expiry. Returns the claims renewed, and the runs whose claim is gone.
#[allow(clippy::type_complexity)]
fn renew(
    ctx: &EngineContext,
    held: &[(String, KeyedRef, StatusMarker)],
) -> Result<(Vec<(String, StatusMarker)>, Vec<String>)> {
    let markers: Vec<&KeyedRef> = held.iter().map(|(_, m, _)| m).collect();
    // Visible to every agent when it returns: a git store pushes it.
    ctx.state.update_with(Durability::Shared, |tx| {
        tx.prefetch(&markers)?;
        let expires = Timestamp::new(ctx.now() + ctx.lease);
        let (mut renewed, mut lost) = (Vec::new(), Vec::new());
        for (key, marker, claim) in held {
            let current: Option<StatusMarker> = tx
                .get(marker)?
                .map(|doc| parse_doc(marker, "status marker", doc))
                .transpose()?;
            match current {
                Some(c) if same_claim(&c, claim) => {
                    let next = StatusMarker {
                        expires: Some(expires),
                        ..c
                    };
                    tx.set_doc(marker, &next)?;
                    renewed.push((key.clone(), next));
                }
                _ => lost.push(key.clone()),
            }
        }
        Ok((renewed, lost))
    })
}

/// Whether two `running` markers record the same claim: the same agent,
/// claiming at the same moment.
pub(crate) fn same_claim(a: &StatusMarker, b: &StatusMarker) -> bool {
    a.agent == b.agent && a.since == b.since
}

/// Whether a claim's lease has run out by this agent's clock (so its
/// outcome must reach every agent before it counts: another may be taking
/// the run over).
pub(crate) fn lapsed(ctx: &EngineContext, claim: Option<&StatusMarker>) -> bool {
    claim
        .and_then(|c| c.expires)
        .is_none_or(|e| ctx.now() >= e.system_time())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_parse_as_durations_or_seconds() {
        assert_eq!(parse_lease("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_lease("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_lease("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_lease("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_lease(" 3 ").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_lease("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_lease("24h").unwrap(), MAX_RUN_LEASE);
        for bad in [
            "", "soon", "-3", "10ms", "0", "nan", "1e30", "25h", "20000y",
        ] {
            let e = parse_lease(bad).unwrap_err();
            assert!(e.to_string().contains("OCUROOT_RUN_LEASE"), "{bad}: {e}");
        }
    }
}
