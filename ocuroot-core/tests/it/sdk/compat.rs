//! Files written for the original Ocuroot evaluate unchanged: every SDK
//! parameter by keyword, the original's positional order, and private
//! (`_name`) module-level functions as work functions and triggers.

use std::collections::BTreeMap;

use ocuroot_core::model::{InputSpec, Tag, Work};
use ocuroot_core::sdk::{self, CallRequest, Outcome};
use serde_json::json;

use super::Repo;

/// Call `function` of `loaded` with `inputs`.
fn call(
    loaded: &sdk::LoadedFile,
    function: &ocuroot_core::model::FunctionId,
    inputs: serde_json::Value,
) -> sdk::CallResult {
    let inputs: BTreeMap<String, serde_json::Value> =
        serde_json::from_value(inputs).expect("inputs are an object");
    loaded.call(&CallRequest {
        function: function.clone(),
        inputs,
        work_dir: None,
        base: None,
        log_sink: None,
    })
}

/// Every global spelled with keywords, the way the original's own files
/// and its documentation write them.
const KEYWORDS: &str = r#"
ocuroot(version="0.3.0")

def build(prev):
    secret(value="s3cr3t")
    out = shell(command="echo built", mute=True)
    host.write_file(path="out.txt", content=out.stdout)
    return next(fn=publish, annotation="then publish", inputs={"built": read(path="out.txt").strip()})

def publish(built):
    return done(annotation="published", outputs={"built": built}, tags=["v1"], watch=["src/"])

def up(environment, tag):
    return done(outputs={"env": environment["name"], "tag": tag})

def down(environment):
    return done()

phase(name="build", tasks=[
    task(fn=build, name="build", annotation="compile", inputs={
        "prev": input(ref=ref(ref="./@/task/build#output/built"), default="none"),
    }),
])
phase(name="deploy", work=[
    deploy(environment=environment(name="staging", attributes={"tier": 1}), up=up, down=down,
           inputs={"tag": input(ref="./task/build#output/built")}),
])
"#;

#[test]
fn every_global_takes_its_parameters_by_keyword() {
    let repo = Repo::new(&[("release.ocu.star", KEYWORDS)]);
    let loaded = repo
        .eval("release.ocu.star")
        .expect("keyword spelling evaluates");
    let package = loaded.package().expect("a release");
    let names: Vec<(&str, Vec<String>)> = package
        .phases
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.work.iter().map(|w| w.path().to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("build", vec!["task/build".to_string()]),
            ("deploy", vec!["deploy/staging".to_string()]),
        ]
    );
    let Work::Task(build) = &package.phases[0].work[0] else {
        panic!("build is a task")
    };
    assert_eq!(
        serde_json::to_value(&build.inputs["prev"]).unwrap(),
        json!({"ref": "repo/-/release.ocu.star/@/task/build#output/built", "default": "none"})
    );

    // next(fn=...), shell(command=...), read/write(path=...) and
    // done(outputs=..., tags=..., watch=...) at run time.
    let first = call(&loaded, &build.function, json!({"prev": "none"}));
    let next = match first.outcome.expect("build runs") {
        Outcome::Next {
            function, inputs, ..
        } => {
            assert_eq!(function.name, "publish");
            assert_eq!(
                serde_json::to_value(&inputs).unwrap(),
                json!({"built": {"value": "built"}})
            );
            function
        }
        other => panic!("expected next(), got {other:?}"),
    };
    let second = call(&loaded, &next, json!({"built": "built"}));
    assert_eq!(
        second.outcome.expect("publish runs"),
        Outcome::Done {
            outputs: json!({"built": "built"}).as_object().unwrap().clone(),
            tags: vec![Tag::new("v1").unwrap()],
            watch: vec!["src/".into()],
        }
    );

    // register_environment(env=...) in an environments file.
    let repo = Repo::new(&[(
        "environments.ocu.star",
        "register_environment(env=environment(name=\"prod\", attributes={\"tier\": 2}))\n",
    )]);
    let loaded = repo.eval("environments.ocu.star").unwrap();
    let sdk::FileContents::Environments(envs) = loaded.contents() else {
        panic!("an environments file")
    };
    assert_eq!(envs[0].name.as_str(), "prod");

    // repo.ocu.star: repo_alias(alias=...), store.set(state=..., intent=...),
    // store.fs(path=...), store.git(remote_url=...), remotes(remotes=...).
    let repo = Repo::new(&[(
        "repo.ocu.star",
        r#"
repo_alias(alias="kw/repo")
store.set(state=store.fs(path=".state"), intent=store.git(remote_url="/tmp/intent.git", branch="intent"))
remotes(remotes=["/tmp/a.git"])
"#,
    )]);
    let cfg =
        sdk::evaluate_repo_config(&repo.root().join("repo.ocu.star"), &repo.options("r1")).unwrap();
    assert_eq!(cfg.alias.as_deref(), Some("kw/repo"));
    assert_eq!(
        serde_json::to_value(&cfg.state).unwrap(),
        json!({"fs": {"path": ".state"}})
    );
    assert_eq!(
        serde_json::to_value(&cfg.intent).unwrap()["git"]["branch"],
        json!("intent")
    );
    assert_eq!(cfg.remotes, ["/tmp/a.git"]);
}

/// Positional arguments follow the original's order: `done(annotation,
/// outputs, tags, watch)`, `phase(name, work)`, `task(fn, name)`.
#[test]
fn positional_arguments_follow_the_original_order() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def build():
    return done("built it", {"n": 1}, ["t1"], ["lib/"])

phase("build", [task(build, "build")])
"#,
    )]);
    let loaded = repo.eval("release.ocu.star").unwrap();
    let package = loaded.package().unwrap();
    assert_eq!(package.phases[0].name, "build");
    let Work::Task(build) = &package.phases[0].work[0] else {
        panic!("a task")
    };
    assert_eq!(
        call(&loaded, &build.function, json!({})).outcome.unwrap(),
        Outcome::Done {
            outputs: json!({"n": 1}).as_object().unwrap().clone(),
            tags: vec![Tag::new("t1").unwrap()],
            watch: vec!["lib/".into()],
        }
    );
}

#[test]
fn private_module_level_functions_are_work_functions() {
    let repo = Repo::new(&[
        (
            "release.ocu.star",
            r#"
load("./lib.star", "chain")

def _build():
    return next(fn=_noop)

def _noop():
    return done(outputs={"step": "noop"})

def _up(environment):
    return chain()

def _down(environment):
    return done()

task(fn=_build, name="build")
deploy(environment=environment("staging"), up=_up, down=_down)
"#,
        ),
        (
            "lib.star",
            r#"
def _second():
    return done(outputs={"step": "second"})

def chain():
    return next(fn=_second)
"#,
        ),
    ]);
    let loaded = repo
        .eval("release.ocu.star")
        .expect("private defs are accepted");
    let package = loaded.package().unwrap();
    let Work::Task(build) = &package.phases[0].work[0] else {
        panic!("a task")
    };
    assert_eq!(build.function.name, "_build");
    assert_eq!(build.function.pos(), "release.ocu.star:4:1");
    let Work::Deploy(deploy) = &package.phases[1].work[0] else {
        panic!("a deploy")
    };
    assert_eq!(deploy.up.name, "_up");
    assert_eq!(deploy.down.name, "_down");
    assert!(loaded.has_function(&deploy.down));

    // next(fn=_noop) from a work function of the package file...
    let Outcome::Next { function, .. } = call(&loaded, &build.function, json!({})).outcome.unwrap()
    else {
        panic!("_build continues with next()")
    };
    assert_eq!(
        (function.name.as_str(), function.file.as_str()),
        ("_noop", "release.ocu.star")
    );
    assert_eq!(
        call(&loaded, &function, json!({})).outcome.unwrap(),
        Outcome::Done {
            outputs: json!({"step": "noop"}).as_object().unwrap().clone(),
            tags: vec![],
            watch: vec![],
        }
    );
    // ...and a private def of a loaded file, named by a function there.
    let env = json!({"environment": {"name": "staging", "attributes": {}}});
    let Outcome::Next { function, .. } = call(&loaded, &deploy.up, env).outcome.unwrap() else {
        panic!("_up continues with next()")
    };
    assert_eq!(
        (function.name.as_str(), function.file.as_str()),
        ("_second", "lib.star")
    );
    assert!(call(&loaded, &function, json!({})).outcome.is_ok());
    let InputSpec::Ref { r#ref, .. } = &deploy.inputs["environment"] else {
        panic!("environment is a ref input")
    };
    assert_eq!(r#ref.to_string(), "@/environment/staging");
}

#[test]
fn a_private_trigger_in_repo_config() {
    let repo = Repo::new(&[(
        "repo.ocu.star",
        "def _trigger(commit):\n    print(\"trigger \" + commit)\n\ntrigger(_trigger)\n",
    )]);
    let (loaded, cfg) =
        sdk::evaluate_repo_file(&repo.root().join("repo.ocu.star"), &repo.options("r1")).unwrap();
    let trigger = cfg.trigger.expect("the trigger is recorded");
    assert_eq!(trigger.name, "_trigger");
    let result = call(&loaded, &trigger, json!({"commit": "abc"}));
    result.outcome.unwrap();
    let log: Vec<&str> = result.log.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(log, ["trigger abc"]);
}

/// Lambdas and nested defs are still refused, private or not, with the
/// location and the Starlark stack.
#[test]
fn nested_private_defs_and_lambdas_are_still_refused() {
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def make():
    def _inner():
        return done()
    return _inner

task(fn=make(), name="build")
"#,
    )]);
    let text = repo.error("release.ocu.star");
    assert!(text.contains("location: release.ocu.star:7:1"), "{text}");
    assert!(text.contains("Traceback"), "{text}");
    assert!(
        text.contains("`_inner` is not a module-level def"),
        "{text}"
    );

    // A module-level `_inner` does not make a nested one of the same name
    // acceptable: the values differ.
    let repo = Repo::new(&[(
        "release.ocu.star",
        r#"
def _inner():
    return done()

def make():
    def _inner():
        return done()
    return _inner

task(fn=make(), name="build")
"#,
    )]);
    let text = repo.error("release.ocu.star");
    assert!(text.contains("location: release.ocu.star:10:1"), "{text}");
    assert!(
        text.contains("`_inner` is not a module-level def"),
        "{text}"
    );

    let repo = Repo::new(&[(
        "release.ocu.star",
        "_up = lambda environment: None\ndef _down(environment): pass\ndeploy(environment=environment(\"s\"), up=_up, down=_down)\n",
    )]);
    let text = repo.error("release.ocu.star");
    assert!(text.contains("location: release.ocu.star:3:1"), "{text}");
    assert!(text.contains("`lambda` is a lambda"), "{text}");
}

/// The Go Starlark `json` module's `indent` and `encode_indent`, and the
/// original's `environment_from_json` / `environment_from_dict`, with the
/// original's outputs.
const GO_JSON_AND_ENVIRONMENTS: &str = r#"
ocuroot("0.3.0")

def check():
    e = environment_from_json(envJSON='{"name": "prod", "attributes": {"region": "eu"}}')
    d = environment_from_dict({"name": "dev", "attributes": {}})
    return done(outputs={
        "indent": json.indent('{"a":1, "b":[1,2,{}],"c":[]}'),
        "indent_prefix": json.indent('[1e3]', prefix="> ", indent="  "),
        "encode_indent": json.encode_indent({"k": ["v"], "n": None}),
        "encode_indent_spaces": json.encode_indent([1], indent="    "),
        "e": [e.name, e.attributes],
        "d": [d.name, d.attributes],
        # An environment's json() and dict(), and back: the same environment.
        "json": e.json(),
        "dict": e.dict(),
        "round_trip": [
            environment_from_json(e.json()) == e,
            environment_from_dict(e.dict()) == e,
            environment("prod", {"region": "eu"}) == e,
            environment("prod", {"region": "us"}) == e,
            d == e,
        ],
        "encoded": json.decode(json.encode(d)),
        "type": type(e),
        "has": [hasattr(e, "json"), hasattr(e, "dict"), hasattr(e, "nope")],
    })

def bad_indent():
    return done(outputs={"x": json.indent("{")})

def bad_environment():
    return done(outputs={"x": environment_from_json('{"attributes": {}}').name})

task(check, name="check")
task(bad_indent, name="bad_indent")
task(bad_environment, name="bad_environment")
"#;

#[test]
fn go_json_indent_and_environments_from_json_and_dicts_and_back() {
    let repo = Repo::new(&[("release.ocu.star", GO_JSON_AND_ENVIRONMENTS)]);
    let loaded = repo.eval("release.ocu.star").expect("evaluates");
    let package = loaded.package().expect("a release");
    let function = |i: usize| match &package.phases[i].work[0] {
        Work::Task(t) => t.function.clone(),
        other => panic!("expected a task, got {other:?}"),
    };
    let outcome = call(&loaded, &function(0), json!({}))
        .outcome
        .expect("check runs");
    let Outcome::Done { outputs, .. } = outcome else {
        panic!("expected done(), got {outcome:?}")
    };
    assert_eq!(
        serde_json::Value::Object(outputs),
        json!({
            "indent": "{\n\t\"a\": 1,\n\t\"b\": [\n\t\t1,\n\t\t2,\n\t\t{}\n\t],\n\t\"c\": []\n}",
            "indent_prefix": "[\n>   1e3\n> ]",
            "encode_indent": "{\n\t\"k\": [\n\t\t\"v\"\n\t],\n\t\"n\": null\n}",
            "encode_indent_spaces": "[\n    1\n]",
            "e": ["prod", {"region": "eu"}],
            "d": ["dev", {}],
            "json": r#"{"name":"prod","attributes":{"region":"eu"}}"#,
            "dict": {"name": "prod", "attributes": {"region": "eu"}},
            "round_trip": [true, true, true, false, false],
            "encoded": {"name": "dev", "attributes": {}},
            "type": "environment",
            "has": [true, true, false],
        })
    );
    let err = call(&loaded, &function(1), json!({}))
        .outcome
        .expect_err("invalid JSON is refused");
    assert!(err.message().contains("json.indent: invalid JSON"), "{err}");
    let err = call(&loaded, &function(2), json!({}))
        .outcome
        .expect_err("an environment needs a name");
    assert!(
        err.message()
            .contains("environment_from_json: expected key \"name\""),
        "{err}"
    );
}
