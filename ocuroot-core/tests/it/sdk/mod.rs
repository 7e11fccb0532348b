//! SDK evaluation: the seed example, the globals, load(), limits, calling
//! work functions later, and snapshot-tested error messages.

mod compat;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ocuroot_core::host::{Host, LineSink, LocalHost, ShellOutput, ShellRequest, Stream};
use ocuroot_core::model::{Environment, EnvironmentName, InputSpec, Work};
use ocuroot_core::refs::Ref;
use ocuroot_core::sdk::{self, CallRequest, EvalOptions, FileContents, Limits, Outcome};
use ocuroot_core::{Error, ErrorKind};
use serde_json::json;

/// A repository in a temp dir with the given files.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(files: &[(&str, &str)]) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        Repo { dir }
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn options(&self, release: &str) -> EvalOptions {
        let mut o = EvalOptions::new(
            Arc::new(LocalHost::new()),
            self.root(),
            Ref::parse(&format!("repo/-/release.ocu.star/@{release}")).unwrap(),
        );
        o.environments = envs(&[
            ("staging", "staging"),
            ("production", "prod"),
            ("production2", "prod"),
        ])
        .into();
        o
    }
    fn eval(&self, file: &str) -> Result<sdk::LoadedFile, Error> {
        sdk::evaluate_package(&self.root().join(file), &self.options("r1"))
    }
    fn eval_with(&self, file: &str, options: &EvalOptions) -> Result<sdk::LoadedFile, Error> {
        sdk::evaluate_package(&self.root().join(file), options)
    }
    /// The error text with the temp root replaced, for snapshots.
    fn error(&self, file: &str) -> String {
        let e = self.eval(file).expect_err("evaluation should fail");
        self.describe(&e)
    }
    fn describe(&self, e: &Error) -> String {
        let root = self.root().canonicalize().unwrap();
        let text = e.to_string().replace(&root.display().to_string(), "[ROOT]");
        let loc = e
            .location()
            .map(|l| l.to_string())
            .unwrap_or_else(|| "<no location>".into());
        format!("kind: {:?}\nlocation: {loc}\n{text}", e.kind())
    }
}

fn envs(list: &[(&str, &str)]) -> Vec<Environment> {
    list.iter()
        .map(|(n, t)| Environment {
            name: EnvironmentName::new(*n).unwrap(),
            attributes: json!({ "type": t }).as_object().unwrap().clone(),
        })
        .collect()
}

/// Call the first work item's function with no inputs.
fn call_first(loaded: &sdk::LoadedFile) -> ocuroot_core::sdk::CallResult {
    let (_, work) = loaded.package().unwrap().work().next().unwrap();
    loaded.call(&CallRequest {
        function: work.entry_function().clone(),
        inputs: BTreeMap::new(),
        work_dir: None,
        base: None,
        log_sink: None,
    })
}

const SEED: &str = include_str!("../../../../examples/quickstart/release.ocu.star");

#[test]
fn seed_example_evaluates_into_phases() {
    let repo = Repo::new(&[("release.ocu.star", SEED)]);
    let loaded = repo.eval("release.ocu.star").unwrap();
    let package = loaded.package().expect("a release");
    let names: Vec<_> = package.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["", "staging", "production"]);
    let Work::Task(build) = &package.phases[0].work[0] else {
        panic!("build is a task")
    };
    assert_eq!(build.name.as_str(), "build");
    assert_eq!(build.function.pos(), "release.ocu.star:6:1");
    assert_eq!(
        build.inputs["prev_build_number"],
        InputSpec::Ref {
            r#ref: Ref::parse("repo/-/release.ocu.star/@/task/build#output/build_number").unwrap(),
            default: Some(json!(0)),
        }
    );
    let prod: Vec<_> = package.phases[2]
        .work
        .iter()
        .map(|w| match w {
            Work::Deploy(d) => d.environment.to_string(),
            Work::Task(_) => panic!("deploys only"),
        })
        .collect();
    assert_eq!(prod, ["production", "production2"]);
    let Work::Deploy(staging) = &package.phases[1].work[0] else {
        panic!("deploy")
    };
    assert_eq!(
        staging.inputs["tag"].as_ref().unwrap().to_string(),
        "repo/-/release.ocu.star/@r1/task/build#output/tag"
    );
    assert_eq!(
        staging.inputs["environment"].as_ref().unwrap().to_string(),
        "@/environment/staging"
    );
    // The package round-trips through its stored JSON form.
    let stored = serde_json::to_value(package).unwrap();
    assert_eq!(
        stored["phases"][1]["tasks"][0]["deploy"]["environment"],
        "staging"
    );
    let back: ocuroot_core::model::Package = serde_json::from_value(stored).unwrap();
    assert_eq!(&back, package);
}

#[test]
fn work_outside_phases_becomes_single_phases_in_order() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def a(): pass
def b(): pass
def c(): pass
task(a, name="a")
task(b, name="b")
phase("p", tasks=[task(c, name="c")])
task(a, name="after")
"#,
    )]);
    let loaded = repo.eval("release.ocu.star").unwrap();
    let phases: Vec<Vec<String>> = loaded
        .package()
        .unwrap()
        .phases
        .iter()
        .map(|p| p.work.iter().map(|w| w.path().to_string()).collect())
        .collect();
    assert_eq!(
        phases,
        [
            vec!["task/a"],
            vec!["task/b"],
            vec!["task/c"],
            vec!["task/after"]
        ]
    );
}

#[test]
fn accepted_sdk_versions_and_call_alias() {
    for v in ["0.3.0", "0.3.14", "0.3.x", ">=0.3"] {
        let file = format!(
            "ocuroot({v:?})\ndef build(): return done(outputs={{\"v\": 1}})\ncall(build, name=\"build\")\n"
        );
        let repo = Repo::new(&[("release.ocu.star", &file)]);
        repo.eval("release.ocu.star")
            .unwrap_or_else(|e| panic!("{v}: {e}"));
    }
    let repo = Repo::new(&[(
        "release.ocu.star",
        "def build(): pass\ntask(build, \"build\")\n",
    )]);
    assert!(repo.eval("release.ocu.star").unwrap().package().is_some());
}

#[test]
fn environments_file_registers_environments() {
    let repo = Repo::new(&[(
        "envs.ocu.star",
        r#"
register_environment(environment("staging", {"type": "staging", "replicas": 2}))
register_environment(environment("prod-eu", {"type": "prod"}))
"#,
    )]);
    let loaded = repo.eval("envs.ocu.star").unwrap();
    let FileContents::Environments(envs) = loaded.contents() else {
        panic!("environments expected")
    };
    assert_eq!(envs.len(), 2);
    assert_eq!(envs[0].attributes["replicas"], json!(2));
    assert_eq!(envs[1].name.as_str(), "prod-eu");
}

#[test]
fn load_resolves_relative_to_the_loading_file_and_caches() {
    let repo = Repo::new(&[
        (
            "app/release.ocu.star",
            r#"
load("./lib/tasks.star", "build")
load("../shared/common.star", "up", "down")
task(build, name="build")
phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
"#,
        ),
        (
            "app/lib/tasks.star",
            "load(\"../../shared/common.star\", \"counter\")\ndef build():\n    return done()\n",
        ),
        (
            "shared/common.star",
            "counter = 1\ndef up(environment): pass\ndef down(environment): pass\n",
        ),
    ]);
    let loaded = repo.eval("app/release.ocu.star").unwrap();
    let package = loaded.package().unwrap();
    let Work::Task(t) = &package.phases[0].work[0] else {
        panic!()
    };
    assert_eq!(t.function.pos(), "lib/tasks.star:2:1");
    let Work::Deploy(d) = &package.phases[1].work[0] else {
        panic!()
    };
    assert_eq!(d.up.pos(), "../shared/common.star:2:1");
    assert!(loaded.has_function(&d.down));
}

/// A host that records commands and answers them without processes.
#[derive(Default)]
struct FakeHost {
    commands: Mutex<Vec<ShellRequest>>,
}

impl Host for FakeHost {
    fn shell(&self, req: &ShellRequest, lines: &LineSink<'_>) -> ocuroot_core::Result<ShellOutput> {
        self.commands.lock().unwrap().push(req.clone());
        lines.line(Stream::Stdout, &format!("ran {}", req.command));
        let code = if req.command.starts_with("false") {
            3
        } else {
            0
        };
        Ok(ShellOutput {
            exit_code: code,
            stdout: format!("ran {}\n", req.command),
            stderr: String::new(),
            combined_output: format!("ran {}\n", req.command),
        })
    }
}

#[test]
fn functions_are_found_again_and_called_with_inputs() {
    let repo = Repo::new(&[("release.ocu.star", SEED)]);
    let host = Arc::new(FakeHost::default());
    let mut options = repo.options("r1");
    options.host = host.clone();
    let loaded = repo.eval_with("release.ocu.star", &options).unwrap();
    let package = loaded.package().unwrap().clone();
    let Work::Task(build) = &package.phases[0].work[0] else {
        panic!()
    };
    let result = loaded.call(&CallRequest {
        function: build.function.clone(),
        inputs: BTreeMap::from([("prev_build_number".to_string(), json!(4))]),
        work_dir: None,
        base: None,
        log_sink: None,
    });
    let outcome = result.outcome.unwrap();
    assert_eq!(
        outcome,
        Outcome::Done {
            outputs: json!({"build_number": 5, "tag": "myapp:5"})
                .as_object()
                .unwrap()
                .clone(),
            tags: vec![],
            watch: vec![],
        }
    );
    let log: Vec<_> = result.log.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        log,
        [
            "Building build 5...",
            "ran docker build . -t myapp:5",
            "ran docker push myapp:5"
        ]
    );
    // host.shell runs in the package file's directory by default.
    let dirs: Vec<_> = host
        .commands
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.dir.clone())
        .collect();
    assert!(
        dirs.iter()
            .all(|d| d == &repo.root().canonicalize().unwrap())
    );

    // `down(environment)` receives only the inputs it declares.
    let Work::Deploy(d) = &package.phases[1].work[0] else {
        panic!()
    };
    let result = loaded.call(&CallRequest {
        function: d.down.clone(),
        inputs: BTreeMap::from([
            ("tag".to_string(), json!("myapp:5")),
            (
                "environment".to_string(),
                json!({"name": "staging", "attributes": {}}),
            ),
        ]),
        work_dir: None,
        base: None,
        log_sink: None,
    });
    result.outcome.unwrap();
    assert_eq!(
        host.commands.lock().unwrap().last().unwrap().command,
        "./undeploy.sh staging"
    );
}

#[test]
fn ctx_style_next_chain_failures_and_secrets() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def approve(ctx):
    token = secret("s3cr3t-token")
    print("using " + token)
    return next(finish, inputs={"approval": ref("./custom/approval"), "n": ctx.inputs.n})

def finish(approval, n):
    return done(outputs={"n": n, "approved": approval, "leak": "s3cr3t-token"}, tags=["v1"])

def broken():
    helper()

def helper():
    fail("deploy failed: s3cr3t-token")

def failing_shell():
    host.shell("false && echo")

task(approve, name="approve", inputs={"n": 3})
task(broken, name="broken")
task(failing_shell, name="shell")
"#,
    )]);
    let host = Arc::new(FakeHost::default());
    let mut options = repo.options("r7");
    options.host = host;
    let loaded = repo.eval_with("release.ocu.star", &options).unwrap();
    let package = loaded.package().unwrap().clone();
    let fid = |i: usize| match &package.phases[i].work[0] {
        Work::Task(t) => t.function.clone(),
        Work::Deploy(_) => panic!(),
    };
    let r = loaded.call(&CallRequest {
        function: fid(0),
        inputs: BTreeMap::from([("n".to_string(), json!(3))]),
        work_dir: None,
        base: None,
        log_sink: None,
    });
    assert_eq!(r.log[0].message, "using <secret>");
    let Outcome::Next {
        function, inputs, ..
    } = r.outcome.unwrap()
    else {
        panic!("next expected")
    };
    assert_eq!(function.name, "finish");
    assert_eq!(
        inputs["approval"].as_ref().unwrap().to_string(),
        "repo/-/release.ocu.star/@r7/custom/approval"
    );
    let r = loaded.call(&CallRequest {
        function,
        inputs: BTreeMap::from([("approval".into(), json!("yes")), ("n".into(), json!(3))]),
        work_dir: None,
        base: None,
        log_sink: None,
    });
    let Outcome::Done { outputs, tags, .. } = r.outcome.unwrap() else {
        panic!()
    };
    assert_eq!(outputs["leak"], "<secret>");
    assert_eq!(tags[0].as_str(), "v1");

    let err = loaded
        .call(&CallRequest {
            function: fid(1),
            inputs: BTreeMap::new(),
            work_dir: None,
            base: None,
            log_sink: None,
        })
        .outcome
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Eval);
    assert!(err.message().contains("deploy failed: <secret>"), "{err}");
    assert!(!err.message().contains("s3cr3t"), "{err}");
    let stack = err.stack().unwrap();
    assert!(
        stack.contains("broken") && stack.contains("helper"),
        "{stack}"
    );
    assert_eq!(err.location().unwrap().to_string(), "release.ocu.star:14:5");

    let err = loaded
        .call(&CallRequest {
            function: fid(2),
            inputs: BTreeMap::new(),
            work_dir: None,
            base: None,
            log_sink: None,
        })
        .outcome
        .unwrap_err();
    assert!(
        err.message().contains("false && echo: exit status 3"),
        "{err}"
    );
}

#[test]
fn local_host_shell_fills_every_stream() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def t():
    r = host.shell("echo out; echo err >&2; exit 4", continue_on_error=True)
    return done(outputs={"stdout": r.stdout, "stderr": r.stderr, "combined": r.combined_output, "code": r.exit_code, "pwd": pwd()})
task(t, name="t")
"#,
    )]);
    let loaded = repo.eval("release.ocu.star").unwrap();
    let r = call_first(&loaded);
    let Outcome::Done { outputs, .. } = r.outcome.unwrap() else {
        panic!()
    };
    assert_eq!(outputs["stdout"], "out\n");
    assert_eq!(outputs["stderr"], "err\n");
    assert_eq!(outputs["code"], 4);
    let combined = outputs["combined"].as_str().unwrap();
    assert!(combined.contains("out\n") && combined.contains("err\n"));
    assert_eq!(
        outputs["pwd"],
        repo.root().canonicalize().unwrap().display().to_string()
    );
    let streams: Vec<_> = r
        .log
        .iter()
        .map(|l| (l.stream, l.message.as_str()))
        .collect();
    assert!(streams.contains(&(Stream::Stdout, "out")));
    assert!(streams.contains(&(Stream::Stderr, "err")));
}

#[test]
fn repo_config_calls_and_globals() {
    let repo = Repo::new(&[(
        "repo.ocu.star",
        r#"
ocuroot("0.3.0")
repo_alias("minimal/repo")
store.set(store.fs(".store"), intent=store.fs(".intent"))
remotes(["https://example.com/a.git"])
def on_commit(commit):
    pass
trigger(on_commit)
"#,
    )]);
    let cfg =
        sdk::evaluate_repo_config(&repo.root().join("repo.ocu.star"), &repo.options("r1")).unwrap();
    assert_eq!(cfg.alias.as_deref(), Some("minimal/repo"));
    assert_eq!(
        serde_json::to_value(&cfg.state).unwrap(),
        json!({"fs": {"path": ".store"}})
    );
    assert_eq!(cfg.remotes, ["https://example.com/a.git"]);
    assert_eq!(cfg.trigger.unwrap().name, "on_commit");

    let repo = Repo::new(&[(
        "repo.ocu.star",
        "repo_alias = \"push\"\nstate_store = store.fs(\".s\")\nrepo_remotes = [\"/tmp/x.git\"]\n",
    )]);
    let cfg =
        sdk::evaluate_repo_config(&repo.root().join("repo.ocu.star"), &repo.options("r1")).unwrap();
    assert_eq!(cfg.alias.as_deref(), Some("push"));
    assert_eq!(cfg.remotes, ["/tmp/x.git"]);
    assert!(cfg.state.is_some());
}

#[test]
fn evaluation_limits_stop_runaway_files() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        "def f(n):\n    return f(n + 1)\nx = f(0)\n",
    )]);
    let e = repo.eval("release.ocu.star").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Eval);
    assert!(e.to_string().to_lowercase().contains("stack"), "{e}");
}

macro_rules! error_case {
    ($name:ident, $files:expr, $file:expr) => {
        #[test]
        fn $name() {
            let repo = Repo::new($files);
            insta::assert_snapshot!(stringify!($name), repo.error($file));
        }
    };
}

error_case!(
    error_syntax,
    &[("release.ocu.star", "def build(:\n    pass\n")],
    "release.ocu.star"
);
error_case!(
    error_syntax_at_the_end_of_the_file,
    &[(
        "release.ocu.star",
        "ocuroot(\"0.3.0\")\n\ndef build():\n    return done(outputs={\"a\": 1,\n\ntask(build, name=\"b\")\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_unknown_global,
    &[(
        "release.ocu.star",
        "def build():\n    pass\ntaks(build, name=\"build\")\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_input_not_a_parameter,
    &[(
        "release.ocu.star",
        "def build(version):\n    pass\ntask(build, name=\"build\", inputs={\"version\": 1, \"extra\": 2})\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_required_parameter_without_input,
    &[(
        "release.ocu.star",
        "def build(version, missing):\n    pass\ntask(build, name=\"build\", inputs={\"version\": 1})\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_bad_input_name,
    &[(
        "release.ocu.star",
        "def build(**kw):\n    pass\ntask(build, name=\"build\", inputs={\"bad-input\": 1})\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_duplicate_task_name,
    &[(
        "release.ocu.star",
        "def build():\n    pass\ntask(build, name=\"build\")\nphase(\"again\", tasks=[\n    task(build, name=\"build\"),\n])\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_environment_deployed_twice,
    &[(
        "release.ocu.star",
        "def up(environment): pass\ndef down(environment): pass\nphase(\"a\", tasks=[deploy(up=up, down=down, environment=environment(\"staging\"))])\nphase(\"b\", tasks=[deploy(up=up, down=down, environment=environment(\"staging\"))])\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_environments_and_package_in_one_file,
    &[(
        "release.ocu.star",
        "def build():\n    pass\ntask(build, name=\"build\")\nregister_environment(environment(\"staging\"))\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_unknown_sdk_version,
    &[("release.ocu.star", "ocuroot(\"0.4.0\")\n")],
    "release.ocu.star"
);
error_case!(
    error_sdk_version_not_a_literal,
    &[("release.ocu.star", "v = \"0.3.0\"\nocuroot(v)\n")],
    "release.ocu.star"
);
error_case!(
    error_load_cycle,
    &[
        ("release.ocu.star", "load(\"./a.star\", \"a\")\n"),
        ("a.star", "load(\"./b.star\", \"b\")\na = 1\n"),
        ("b.star", "load(\"./a.star\", \"a\")\nb = 2\n"),
    ],
    "release.ocu.star"
);
error_case!(
    error_load_outside_root,
    &[(
        "release.ocu.star",
        "load(\"../../etc/passwd.star\", \"x\")\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_fail_at_top_level,
    &[(
        "release.ocu.star",
        "def check():\n    fail(\"refusing to release\")\ncheck()\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_deploy_up_is_a_lambda,
    &[(
        "release.ocu.star",
        "def down(environment): pass\ndeploy(environment=environment(\"staging\"), up=lambda environment: None, down=down)\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_invalid_environment_name,
    &[(
        "envs.ocu.star",
        "register_environment(environment(\"invalid/name\"))\n"
    )],
    "envs.ocu.star"
);
error_case!(
    error_environment_input_is_reserved,
    &[(
        "release.ocu.star",
        "def up(environment): pass\ndef down(environment): pass\ndeploy(environment=environment(\"staging\"), up=up, down=down, inputs={\"environment\": 1})\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_down_parameter_without_input,
    &[(
        "release.ocu.star",
        "def up(environment): pass\ndef down(environment, force): pass\ndeploy(environment=environment(\"staging\"), up=up, down=down)\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_nested_function_as_task,
    &[(
        "release.ocu.star",
        "def make():\n    def inner():\n        pass\n    return inner\ntask(make(), name=\"inner\")\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_invalid_tag,
    &[(
        "release.ocu.star",
        "def build():\n    pass\nx = done(tags=[\"r123\"])\n"
    )],
    "release.ocu.star"
);
error_case!(
    error_repo_only_global_in_package,
    &[("release.ocu.star", "repo_alias(\"x\")\n")],
    "release.ocu.star"
);
error_case!(
    error_error_in_loaded_file,
    &[
        ("release.ocu.star", "load(\"./lib.star\", \"x\")\n"),
        ("lib.star", "x = 1 + \"a\"\n"),
    ],
    "release.ocu.star"
);

#[test]
fn error_infinite_loop_stopped_by_tick_limit() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        "def spin():\n    for i in range(1000000000):\n        pass\nspin()\n",
    )]);
    let mut options = repo.options("r1");
    options.limits = Limits {
        max_ticks: 100_000,
        ..Limits::default()
    };
    let e = repo.eval_with("release.ocu.star", &options).unwrap_err();
    insta::assert_snapshot!(
        "error_infinite_loop_stopped_by_tick_limit",
        repo.describe(&e)
    );
}

/// One HTTP exchange on loopback: returns the URL and a handle yielding the
/// request the server received.
fn one_shot_server(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/path?q=1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        // The body, if any, follows the headers; read what Content-Length says.
        let text = String::from_utf8_lossy(&request).into_owned();
        let len = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let head_end = text.find("\r\n\r\n").unwrap() + 4;
        while request.len() < head_end + len {
            let n = conn.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

#[test]
fn http_calls_go_through_the_host_and_non_2xx_is_not_an_error() {
    let (url, server) = one_shot_server(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nX-Test: a\r\nConnection: close\r\n\r\nnope!",
    );
    let file = format!(
        r#"
def t():
    r = http.post("{url}", headers={{"X-Req": "1"}}, body="hello")
    return done(outputs={{"code": r.status_code, "text": r.status_text, "body": r.body, "h": r.headers["x-test"]}})
task(t, name="t")
"#
    );
    let repo = Repo::new(&[("release.ocu.star", &file)]);
    let loaded = repo.eval("release.ocu.star").unwrap();
    let r = call_first(&loaded);
    let Outcome::Done { outputs, .. } = r.outcome.unwrap() else {
        panic!()
    };
    assert_eq!(outputs["code"], 404);
    assert_eq!(outputs["text"], "404 Not Found");
    assert_eq!(outputs["body"], "nope!");
    assert_eq!(outputs["h"], json!(["a"]));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /path?q=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.to_ascii_lowercase().contains("x-req: 1"),
        "{request}"
    );
    assert!(request.ends_with("hello"), "{request}");
}

#[test]
fn host_helpers_exist_as_host_members_and_bare_globals() {
    let repo = Repo::new(&[(
        "pkg/release.ocu.star",
        r#"
def t():
    write("out/a.txt", "from bare")
    host.write_file("out/b.txt", "from host")
    return done(outputs={
        "a": read("out/a.txt"),
        "b": host.read_file("out/b.txt"),
        "dir": read_dir("out"),
        "host_dir": host.read_dir("out"),
        "is_dir": is_dir("out") and not host.is_dir("out/a.txt"),
        "os": os() == host.os(),
        "arch": arch() == host.arch(),
        "env": type(env()) == "dict" and type(host.env()) == "dict",
        "shell": shell("echo hi").stdout,
    })
task(t, name="t")
"#,
    )]);
    let loaded = repo.eval("pkg/release.ocu.star").unwrap();
    let r = call_first(&loaded);
    let Outcome::Done { outputs, .. } = r.outcome.unwrap() else {
        panic!()
    };
    assert_eq!(
        serde_json::Value::Object(outputs),
        json!({
            "a": "from bare", "b": "from host",
            "dir": ["a.txt", "b.txt"], "host_dir": ["a.txt", "b.txt"],
            "is_dir": true, "os": true, "arch": true, "env": true, "shell": "hi\n",
        })
    );
    // Relative paths resolve against the package file's directory.
    assert!(repo.root().join("pkg/out/a.txt").is_file());
}
