//! Integration tests of the `ocuroot` binary: each test builds a real git
//! repository in a temporary directory, copies fixtures (or the quickstart
//! example) into it and runs the built binary there.
//!
//! - `lint`: `release lint` / `release check`, text (snapshot) and JSON, errors.
//! - `repo`: the root, name and default store without `repo.ocu.star`;
//!   outside any repository; `version`.
//! - `state`: `state get` / `state match` over a hand-written fs store.
//! - `release`: `release new` / `continue` / `retry` end to end.
//! - `status`: `release status`, read from state at any commit.
//! - `intent`: `state set` / `delete` / `diff` / `apply` of custom state,
//!   environments and deploy intents; `work continue` / `work any`.
//! - `cascade`: dependencies across packages and repositories: `work
//!   cascade`, `--cascade`, work at other commits in worktrees and clones,
//!   cycles, the retry bound, `plan` and `work trigger`.
//! - `compat`: repositories and scripts written for the original: keyword
//!   spellings, private functions, package refs as arguments, `op/check_envs`,
//!   flag spellings.
//! - `push`: releasing what changed since the last push, the push index.
//! - `logs`: each command's log file under `$OCUROOT_HOME/logs`, masked
//!   and bounded.
//! - `forms`: the original's command forms: a ref limiting `work` commands,
//!   `--package`/`--release` on `release` and `state`, `state match` without
//!   a glob, `release continue` and `retry` without an argument.
//! - `repl`: `-c`, stdin, and the interactive prompt on a pty (`script`).
//! - `bad_input`: the corpus of bad input under `tests/bad-input/` (each must
//!   fail cleanly, in time, naming what and where, leaving the store as it
//!   was), and names at the limits.
//! - `secrets`: `secret()` values refused where they would be stored, masked
//!   everywhere else, at every log level.
//! - `symlinks`: symbolic links planted in the default fs store.
//! - `view`: `state view` over releases in every state: every page, escaping,
//!   refusals, approvals with `--allow-intent`, `--export`, and a real
//!   headless Chromium when installed.
//! - `progress`: the status area on a terminal (a pty from `script`), and
//!   the plain lines off one.
//! - `find_deploys`: `find-deploys <start> <end>` over releases made at
//!   different commits.
//! - `preview`: `preview <file>` served and fetched over HTTP (the browser
//!   test in `view` loads it too).
//! - `mcp`: `ocuroot mcp` driven over stdio as an MCP client would: the
//!   handshake, the tool list, every tool, and tool errors.
//! - `crash`: releases killed with SIGKILL at random moments, then finished,
//!   on the fs store and on a git store.
//! - `fleet`: exactly once across machines (leases, takeovers, races).
//! - `hardening`: hostile input: concurrent retries, refs with a subpath
//!   where a release is expected, package files that are not regular files,
//!   errors in `repo.ocu.star`, read-only commands that must not run
//!   commands, command timeouts.
//! - `servers`: private git servers on 127.0.0.1 for the other tests
//!   (`git daemon`, sshd, nginx + `git http-backend` over TLS, a latency
//!   proxy), and their self-test; sshd in `servers_ssh.rs`, https in
//!   `servers_https.rs`, the self-test in `servers_selftest.rs` (submodules).
//! - `gitstore_pushes`: what a lone agent's release costs in pushes, and
//!   deploy intents sharing them.
//! - `checkouts`: commands in clones of store branches as the original's
//!   scripts run them: a trigger from the intent folder of a shared branch,
//!   `push` from an intent checkout behind its remote.
//! - `netstore`: the git store on network remotes (ssh, https, `git
//!   daemon`): agents sharing a release, an ssh alias, refusals that write
//!   nothing, credentials never shown, 8 agents on an empty remote, an
//!   outage mid-release; its servers, agents and checks in
//!   `netstore_kit.rs` (a submodule).

#[path = "cli/support.rs"]
mod support;

#[path = "../../tests/packages/mod.rs"]
mod packages;

#[path = "cli/lint.rs"]
mod lint;

#[path = "cli/repo.rs"]
mod repo;

#[path = "cli/state.rs"]
mod state;

#[path = "cli/release.rs"]
mod release;

#[path = "cli/status.rs"]
mod status;

#[path = "cli/intent.rs"]
mod intent;

#[path = "cli/cascade.rs"]
mod cascade;

#[path = "cli/compat.rs"]
mod compat;

#[path = "cli/push.rs"]
mod push;

#[path = "cli/forms.rs"]
mod forms;

#[path = "cli/logs.rs"]
mod logs;

#[path = "cli/repl.rs"]
mod repl;

#[path = "cli/servers.rs"]
mod servers;

#[path = "cli/gitstore.rs"]
mod gitstore;

#[path = "cli/gitstore_pushes.rs"]
mod gitstore_pushes;

#[path = "cli/checkouts.rs"]
mod checkouts;

#[path = "cli/clones.rs"]
mod clones;

#[path = "cli/netstore.rs"]
mod netstore;

#[path = "cli/hardening.rs"]
mod hardening;

#[path = "cli/bad_input.rs"]
mod bad_input;

#[path = "cli/secrets.rs"]
mod secrets;

#[path = "cli/symlinks.rs"]
mod symlinks;

#[path = "cli/crash.rs"]
mod crash;

#[path = "cli/fleet.rs"]
mod fleet;

#[path = "cli/view.rs"]
mod view;

#[path = "cli/progress.rs"]
mod progress;

#[path = "cli/find_deploys.rs"]
mod find_deploys;

#[path = "cli/preview.rs"]
mod preview;

#[path = "cli/mcp.rs"]
mod mcp;
