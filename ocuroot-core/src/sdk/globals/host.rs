//! Host access (`host.*` and the bare helpers `shell`, `read`, ...) and
//! `http.*`, all through the evaluation's [`Host`](crate::host::Host).

use std::collections::BTreeMap;

use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;

use super::ctx;
use crate::host::{HttpRequest, LineSink, ShellRequest};
use crate::sdk::context::emit_line;

/// How `host.shell` treats a command's output, failure and duration.
struct ShellFlags {
    mute: bool,
    continue_on_error: bool,
    /// Seconds, from `timeout=`.
    timeout: Option<f64>,
}

fn shell_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    command: &str,
    shell: &str,
    dir: &str,
    env: SmallMap<String, String>,
    flags: ShellFlags,
) -> anyhow::Result<Value<'v>> {
    let ShellFlags {
        mute,
        continue_on_error,
        timeout,
    } = flags;
    let ctx = ctx(eval)?;
    let timeout = match timeout {
        Some(t) if t.is_finite() && t > 0.0 && t < 1e9 => {
            Some(std::time::Duration::from_secs_f64(t))
        }
        Some(t) => {
            anyhow::bail!("host.shell: timeout must be a positive number of seconds, got {t}")
        }
        None => ctx.options.limits.shell_timeout,
    };
    let req = ShellRequest {
        command: command.to_string(),
        shell: shell.to_string(),
        dir: ctx.path(dir),
        env: env.into_iter().collect(),
        timeout,
    };
    // The host may give lines from other threads: they are made from the
    // options alone, and join the log when the command is done.
    let mut log = Vec::new();
    let options = &ctx.options;
    let lines = LineSink::new(|stream, line: &str| {
        if !mute {
            log.push(emit_line(options, stream, line));
        }
    });
    let out = options.host.shell(&req, &lines);
    drop(lines);
    ctx.log.borrow_mut().extend(log);
    let out = out.map_err(|e| anyhow::anyhow!("{}", options.secrets.mask(e.message())))?;
    if out.exit_code != 0 && !continue_on_error {
        anyhow::bail!(
            "{}: exit status {}",
            ctx.options.secrets.mask(command),
            out.exit_code
        );
    }
    let heap = eval.heap();
    Ok(heap.alloc(AllocStruct([
        ("stdout", heap.alloc(out.stdout)),
        ("stderr", heap.alloc(out.stderr)),
        ("combined_output", heap.alloc(out.combined_output)),
        ("exit_code", heap.alloc(out.exit_code)),
    ])))
}

fn http_impl<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    method: &str,
    url: &str,
    headers: SmallMap<String, String>,
    body: &str,
) -> anyhow::Result<Value<'v>> {
    let ctx = ctx(eval)?;
    let resp = ctx
        .options
        .host
        .http(&HttpRequest {
            method: method.to_string(),
            url: url.to_string(),
            headers: headers.into_iter().collect(),
            body: body.to_string(),
        })
        .map_err(|e| anyhow::anyhow!("{}", ctx.options.secrets.mask(e.message())))?;
    let heap = eval.heap();
    Ok(heap.alloc(AllocStruct([
        ("status_code", heap.alloc(resp.status_code as i32)),
        ("status_text", heap.alloc(resp.status_text)),
        ("headers", heap.alloc(serde_json::to_value(resp.headers)?)),
        ("body", heap.alloc(resp.body)),
    ])))
}

/// The host helpers, defined once and registered twice: as `host.<name>`
/// and as bare globals (`shell`, `read`, `write`...), as in the original.
macro_rules! host_helpers {
    ($module:ident, $read:ident, $write:ident) => {
        #[starlark_module]
        pub(super) fn $module(builder: &mut GlobalsBuilder) {
            /// Run a shell command in the package directory (or `dir`, relative
            /// to it) with `shell` (`sh`), the host's environment plus `env`.
            ///
            /// Returns a struct with `stdout`, `stderr`, `combined_output` and
            /// `exit_code`; a non-zero exit fails the call unless
            /// `continue_on_error`. `mute` keeps the output out of the log;
            /// `timeout` (seconds) kills the command and what it started.
            // The original's keyword arguments, and `timeout`.
            #[allow(clippy::too_many_arguments)]
            fn shell<'v>(
                command: &str,
                #[starlark(default = "sh")] shell: &str,
                #[starlark(default = ".")] dir: &str,
                // Absent: an empty map ("Absent dicts" in sdk/globals/mod.rs).
                #[starlark(default = SmallMap::new())] env: SmallMap<String, String>,
                #[starlark(default = false)] mute: bool,
                #[starlark(default = false)] continue_on_error: bool,
                timeout: Option<starlark::values::Value<'v>>,
                eval: &mut Evaluator<'v, '_, '_>,
            ) -> anyhow::Result<Value<'v>> {
                let timeout = match timeout {
                    None => None,
                    Some(v) if v.is_none() => None,
                    Some(v) => Some(
                        v.unpack_i32()
                            .map(f64::from)
                            .or_else(|| <starlark::values::float::StarlarkFloat as starlark::values::UnpackValue>::unpack_value(v).ok().flatten().map(|f| f.0))
                            .ok_or_else(|| anyhow::anyhow!("host.shell: timeout must be a number of seconds, got {}", v.get_type()))?,
                    ),
                };
                let flags = ShellFlags {
                    mute,
                    continue_on_error,
                    timeout,
                };
                shell_impl(eval, command, shell, dir, env, flags)
            }
            /// The operating system (`linux`, `darwin`...).
            fn os(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.options.host.os())
            }
            /// The CPU architecture (`amd64`, `arm64`...).
            fn arch(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.options.host.arch())
            }
            /// The environment variables, as a dict.
            fn env(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<BTreeMap<String, String>> {
                Ok(ctx(eval)?.options.host.env())
            }
            /// The package directory.
            fn pwd(eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                Ok(ctx(eval)?.work_dir.display().to_string())
            }
            /// Read a file relative to the package directory.
            fn $read(path: &str, eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<String> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .read_file(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
            /// Write a file relative to the package directory, creating parent directories.
            fn $write(
                path: &str,
                content: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<NoneType> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .write_file(&c.path(path), content)
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                Ok(NoneType)
            }
            /// The entries of a directory, sorted.
            fn read_dir(
                path: &str,
                eval: &mut Evaluator<'_, '_, '_>,
            ) -> anyhow::Result<Vec<String>> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .read_dir(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
            /// Whether a path is a directory (an error if it does not exist).
            fn is_dir(path: &str, eval: &mut Evaluator<'_, '_, '_>) -> anyhow::Result<bool> {
                let c = ctx(eval)?;
                c.options
                    .host
                    .is_dir(&c.path(path))
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))
            }
        }
    };
}

host_helpers!(host_members, read_file, write_file);
host_helpers!(bare_host, read, write);

/// `http.get(url, headers={})` and the other methods: one function per
/// method, those of the second list also taking `body=""`. An absent
/// `headers` is an empty map ("Absent dicts" in sdk/globals/mod.rs).
macro_rules! http_module {
    (
        without a body { $($name:ident = $method:literal, $doc:literal;)* }
        with a body { $($bname:ident = $bmethod:literal, $bdoc:literal;)* }
    ) => {
        #[starlark_module]
        pub(super) fn http_members(builder: &mut GlobalsBuilder) {
            $(
                #[doc = $doc]
                fn $name<'v>(
                    url: &str,
                    #[starlark(default = SmallMap::new())] headers: SmallMap<String, String>,
                    eval: &mut Evaluator<'v, '_, '_>,
                ) -> anyhow::Result<Value<'v>> {
                    http_impl(eval, $method, url, headers, "")
                }
            )*
            $(
                #[doc = $bdoc]
                fn $bname<'v>(
                    url: &str,
                    #[starlark(default = SmallMap::new())] headers: SmallMap<String, String>,
                    #[starlark(default = "")] body: &str,
                    eval: &mut Evaluator<'v, '_, '_>,
                ) -> anyhow::Result<Value<'v>> {
                    http_impl(eval, $bmethod, url, headers, body)
                }
            )*
        }
    };
}

http_module! {
    without a body {
        get = "GET", "HTTP GET.";
        head = "HEAD", "HTTP HEAD.";
        delete = "DELETE", "HTTP DELETE.";
    }
    with a body {
        post = "POST", "HTTP POST.";
        put = "PUT", "HTTP PUT.";
        patch = "PATCH", "HTTP PATCH.";
    }
}
