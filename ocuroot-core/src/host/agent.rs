//! Who claims runs: an [`Agent`] is one process on one machine, named so
//! that another process can tell, where it safely can, whether it is still
//! alive.
//!
//! A process id alone names nothing: the same number is another process in
//! another PID namespace (a container), after a reboot, or once the pid is
//! reused. So an agent records, besides its host name and pid, the kernel's
//! boot id, the inode of its PID namespace and its start time; and a random
//! id of its own, so that no two agents anywhere compare equal.
//!
//! [`agent_alive`] answers only where it cannot misjudge: the other agent
//! has the same host name, the same boot and the same PID namespace as this
//! process, and this process's `/proc` shows that namespace. Then a missing
//! `/proc/<pid>`, a zombie, or a process that started at another time (a
//! reused pid) is a dead agent, and a process with the recorded start time
//! is alive. Anywhere else (another machine, another container, an agent
//! recorded before these fields existed) the answer is "cannot tell", and
//! the claim's lease decides.

use std::sync::OnceLock;

/// An agent: a process on a host that claims runs.
///
/// Recorded on each running run's status marker. Every field but `host` and
/// `pid` is optional: markers written before they existed, and agents on
/// systems without `/proc`, have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Agent {
    /// The host name.
    pub host: String,
    /// The process id, in the agent's own PID namespace.
    pub pid: u32,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): a pid
    /// means nothing across boots, and containers on one machine share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<String>,
    /// The inode of the agent's PID namespace (`/proc/self/ns/pid`): the
    /// same pid in another namespace is another process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<u64>,
    /// When the process started, in clock ticks after boot (field 22 of
    /// `/proc/<pid>/stat`): a reused pid has another start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// A random id of this agent, unique across machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Agent {
    /// An agent known by host name and pid only (a liveness check can say
    /// nothing about it).
    pub fn new(host: impl Into<String>, pid: u32) -> Agent {
        Agent {
            host: host.into(),
            pid,
            ..Agent::default()
        }
    }
}

impl std::fmt::Display for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "agent {} pid {}", self.host, self.pid)
    }
}

/// This process as an agent. Read once per process: the engine asks at
/// every claim.
pub(super) fn agent() -> Agent {
    static ME: OnceLock<Agent> = OnceLock::new();
    ME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "localhost".to_string());
        Agent {
            host,
            pid: std::process::id(),
            boot: boot_id(),
            pid_ns: pid_namespace(),
            started: std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| parse_stat(&s))
                .map(|(_, started)| started),
            id: Some(random_id()),
        }
    })
    .clone()
}

/// Whether `other` is alive, where that can be told for certain:
/// `Some(false)` when it is known to be gone, `Some(true)` when its very
/// process is running, `None` when this process cannot tell (see the
/// module docs).
pub(super) fn agent_alive(other: &Agent) -> Option<bool> {
    let me = agent();
    if other.id.is_some() && other.id == me.id {
        return Some(true);
    }
    if other.host != me.host {
        return None;
    }
    let (Some(boot), Some(ns), Some(started)) = (&other.boot, other.pid_ns, other.started) else {
        return None;
    };
    if me.boot.as_ref() != Some(boot) || me.pid_ns != Some(ns) || !proc_shows_own_namespace() {
        return None;
    }
    match std::fs::read_to_string(format!("/proc/{}/stat", other.pid)) {
        Ok(text) => match parse_stat(&text) {
            Some(('Z' | 'X' | 'x', _)) => Some(false),
            Some((_, start)) => Some(start == started),
            None => None,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// `/proc/sys/kernel/random/boot_id`, if there is one.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The inode of this process's PID namespace: `/proc/self/ns/pid` links to
/// `pid:[<inode>]`.
fn pid_namespace() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_str()?;
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Whether the `/proc` this process sees belongs to its own PID namespace
/// (`/proc/self` is this process's pid): only then does `/proc/<pid>` name
/// the process with that pid in this namespace.
fn proc_shows_own_namespace() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()))
        == Some(std::process::id())
}

/// The state letter and the start time (field 22) of a `/proc/<pid>/stat`
/// line. The command name (field 2) is in parentheses and may contain
/// spaces and parentheses itself, so fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state).
    let state = fields.first()?.chars().next()?;
    let started = fields.get(22 - 3)?.parse().ok()?;
    Some((state, started))
}

/// 128 random bits as hex, from the standard library's per-process random
/// hash keys (seeded by the OS), the time and the pid.
pub(crate) fn random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for salt in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_gone_or_reused_pid_is_dead() {
        let me = agent();
        assert_eq!(agent_alive(&me), Some(true));
        if me.boot.is_none() || me.pid_ns.is_none() || !proc_shows_own_namespace() {
            // No /proc here: nothing more can be told.
            return;
        }
        // The same process seen without the random id: judged by /proc.
        let plain = Agent {
            id: None,
            ..me.clone()
        };
        assert_eq!(agent_alive(&plain), Some(true));
        // A pid that is reused: the start time differs.
        let reused = Agent {
            started: me.started.map(|s| s + 1),
            ..plain.clone()
        };
        assert_eq!(agent_alive(&reused), Some(false));
        // A process that is gone (pids this large are never handed out).
        let gone = Agent {
            pid: 4_000_000_000,
            ..plain.clone()
        };
        assert_eq!(agent_alive(&gone), Some(false));
        // Another PID namespace, another boot, another host, or an agent
        // recorded with host and pid only: cannot tell.
        for other in [
            Agent {
                pid_ns: me.pid_ns.map(|n| n + 1),
                ..gone.clone()
            },
            Agent {
                boot: Some("another boot".into()),
                ..gone.clone()
            },
            Agent {
                host: format!("{}-other", me.host),
                ..gone.clone()
            },
            Agent::new(me.host.clone(), 4_000_000_000),
        ] {
            assert_eq!(agent_alive(&other), None, "{other:?}");
        }
    }

    #[test]
    fn agents_have_distinct_random_ids() {
        assert_ne!(random_id(), random_id());
        assert_eq!(random_id().len(), 32);
    }
}
