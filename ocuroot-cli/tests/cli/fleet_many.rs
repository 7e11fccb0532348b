//! Many agents at the same moment (all waiting for one barrier file), on
//! both stores, for `OCUROOT_FLEET_ROUNDS` rounds (default 3):
//!
//! - `eight_agents_release_one_commit`: 8 agents run `release new` of one
//!   package at one commit: exactly one makes the release (exit 0), the
//!   others exit 1 with the original's message (`releases for this
//!   commit`); one release per commit in state; the build ran once a round.
//! - `four_agents_deploy_new_environments`: 4 environments added through
//!   intent, then 4 agents run `work any --comprehensive`: each exits 0, and
//!   each new environment's deploy has one complete run and its `up` ran
//!   once.
//! - `four_agents_cascade`: `examples/dependencies` released, then a new
//!   backend commit released, then 4 agents run `work cascade`: each exits
//!   0, and the frontend is redeployed exactly once in each environment.

use std::time::Instant;

use super::kit::{Agent, Fleet, Store, assert_no_problems, describe, rounds};

super::on_both_stores!(
    eight_agents_release_one_commit,
    four_agents_deploy_new_environments,
    four_agents_cascade,
);

/// A build task whose side effect appends `build` to `out/exec/build.log`.
const BUILD: &str = r#"ocuroot("0.3.0")

LOG = "{LOG}"

def build():
    host.shell("mkdir -p {} && echo build >> {}/build.log".format(LOG, LOG))
    return done(outputs={"built": True})

task(build, name="build")
"#;

/// Two environments.
const ENVIRONMENTS: &str = r#"ocuroot("0.3.0")

register_environment(environment("staging", {}))
register_environment(environment("prod", {}))
"#;

/// A service deployed to every environment; the side effects of `up` and
/// `down` append the environment's name to `out/exec/up-<env>.log` and
/// `out/exec/down-<env>.log`.
const SERVICE: &str = r#"ocuroot("0.3.0")

LOG = "{LOG}"

def up(environment):
    name = environment["name"]
    host.shell("mkdir -p {} && echo {} >> {}/up-{}.log".format(LOG, name, LOG, name))
    return done(outputs={"env": name})

def down(environment):
    name = environment["name"]
    host.shell("mkdir -p {} && echo {} >> {}/down-{}.log".format(LOG, name, LOG, name))
    return done()

phase("deploy", tasks=[deploy(up=up, down=down, environment=e) for e in environments()])
"#;

/// The agents `agent0` .. on this machine, each with its own home.
fn agents(n: usize) -> Vec<Agent> {
    (0..n).map(|i| Agent::here(&format!("agent{i}"))).collect()
}

fn eight_agents_release_one_commit(store: Store) {
    let started = Instant::now();
    let fleet = Fleet::new(store, &[("app.ocu.star", BUILD)]);
    let pkg = "fleet/-/app.ocu.star";
    let agents = agents(8);
    let rounds = rounds();
    let mut problems = Vec::new();
    let mut extra_releases = 0;
    for round in 1..=rounds {
        fleet.repo.write("round.txt", &round.to_string());
        let sha = fleet.commit(&format!("round {round}"));
        let results = fleet.all_at_once(&agents, &["release", "new", "app.ocu.star", "-q"]);
        let codes: Vec<Option<i32>> = results.iter().map(|r| r.code).collect();
        if codes.iter().filter(|c| **c == Some(0)).count() != 1 {
            problems.push(format!(
                "round {round}: the exit codes of the 8 agents are {codes:?}, expected one 0"
            ));
        }
        for (i, r) in results.iter().enumerate() {
            let refused = r.code == Some(1) && r.stderr.contains("releases for this commit");
            if r.code != Some(0) && !refused {
                problems.push(format!("round {round}: agent{i}: {}", describe(r)));
            }
        }
        let at_commit: Vec<String> = fleet
            .matches(&format!("{pkg}/@r*"))
            .into_iter()
            .filter(|rel| {
                fleet
                    .get(rel)
                    .is_some_and(|doc| doc["commit"] == sha.as_str())
            })
            .collect();
        if at_commit.len() != 1 {
            extra_releases += at_commit.len().saturating_sub(1);
            problems.push(format!(
                "round {round}: releases at commit {sha}: {at_commit:?}, expected one"
            ));
        }
        let builds = fleet.log_lines("build").len();
        if builds != round {
            problems.push(format!(
                "after round {round} the build ran {builds} times in all, expected {round}"
            ));
        }
    }
    println!(
        "fleet eight_agents_release_one_commit [{}]: {rounds} rounds, {extra_releases} extra releases, \
         the build ran {} times; {} problems; {:.1}s",
        store.name(),
        fleet.log_lines("build").len(),
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("eight agents releasing one commit", store, &problems);
}

fn four_agents_deploy_new_environments(store: Store) {
    let started = Instant::now();
    let fleet = Fleet::new(
        store,
        &[
            ("environments.ocu.star", ENVIRONMENTS),
            ("svc.ocu.star", SERVICE),
        ],
    );
    let rel = "fleet/-/svc.ocu.star/@r1";
    let setup = Agent::here("setup");
    fleet.ok(&setup, &["release", "new", "environments.ocu.star", "-q"]);
    fleet.ok(&setup, &["release", "new", "svc.ocu.star", "-q"]);
    let agents = agents(4);
    let rounds = rounds();
    let mut problems = Vec::new();
    let mut envs = vec!["staging".to_string(), "prod".to_string()];
    let (mut doubles, mut missing) = (0, 0);
    for round in 1..=rounds {
        let new: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|k| format!("env{round}{k}"))
            .collect();
        for name in &new {
            let doc = serde_json::json!({"name": name, "attributes": {}}).to_string();
            fleet.ok(
                &setup,
                &[
                    "state",
                    "set",
                    "-f",
                    "json",
                    &format!("@/environment/{name}"),
                    &doc,
                ],
            );
        }
        envs.extend(new.iter().cloned());
        let results = fleet.all_at_once(&agents, &["work", "any", "--comprehensive", "-q"]);
        for (i, r) in results.iter().enumerate() {
            if r.code != Some(0) {
                problems.push(format!("round {round}: agent{i}: {}", describe(r)));
            }
        }
        let runs = fleet.all_runs(rel);
        for env in &envs {
            let r = runs
                .get(&format!("deploy/{env}"))
                .cloned()
                .unwrap_or_default();
            let lines = fleet.log_lines(&format!("up-{env}")).len();
            let downs = fleet.log_lines(&format!("down-{env}")).len();
            if r != [(1, "complete".to_string())] {
                problems.push(format!(
                    "round {round}: the deploy to {env} has runs {r:?}, expected one complete \
                     (up ran {lines} times, down {downs} times)"
                ));
            }
            if downs != 0 {
                problems.push(format!(
                    "round {round}: down ran {downs} times in {env}, expected never"
                ));
            }
            if lines != 1 {
                problems.push(format!(
                    "round {round}: up ran {lines} times in {env}, expected once"
                ));
                if lines > 1 {
                    doubles += 1;
                } else {
                    missing += 1;
                }
            }
        }
    }
    println!(
        "fleet four_agents_deploy_new_environments [{}]: {rounds} rounds, {} environments, \
         {doubles} deployed more than once, {missing} not deployed; {} problems; {:.1}s",
        store.name(),
        envs.len(),
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("four agents deploying new environments", store, &problems);
}

fn four_agents_cascade(store: Store) {
    let started = Instant::now();
    let fleet = Fleet::example(store, "dependencies");
    let frontend = "dependencies/-/frontend/release.ocu.star/@r1";
    // The frontend's `up` also leaves a side effect: the URL it deployed
    // against, in `out/exec/frontend-<env>.log`.
    let file = fleet.repo.path().join("frontend/release.ocu.star");
    let text = std::fs::read_to_string(&file).expect("the frontend's package file");
    let print = "    print(\"deployed frontend {} against {}\".format(bundle, backend_url))\n";
    assert!(text.contains(print), "the frontend's up:\n{text}");
    let text = text.replace(
        print,
        &format!(
            "{print}    host.shell(\"mkdir -p {{LOG}} && echo \" + backend_url + \" >> {{LOG}}/frontend-\" + environment[\"name\"] + \".log\")\n"
        ),
    );
    fleet.write("frontend/release.ocu.star", &text);
    fleet.commit("fleet setup");
    let setup = Agent::here("setup");
    for file in [
        "environments.ocu.star",
        "backend/release.ocu.star",
        "frontend/release.ocu.star",
    ] {
        fleet.ok(&setup, &["release", "new", file, "-q"]);
    }
    let envs = ["production", "staging"];
    for env in envs {
        assert_eq!(
            fleet.log_lines(&format!("frontend-{env}")),
            [format!("https://api.{env}.example.com/v1")]
        );
    }

    let agents = agents(4);
    let rounds = rounds();
    let mut problems = Vec::new();
    let mut doubles = 0;
    for round in 1..=rounds {
        let version = format!("v{}", round + 1);
        fleet
            .repo
            .write("backend/api-version.txt", &format!("{version}\n"));
        fleet.commit(&format!("backend {version}"));
        fleet.ok(
            &setup,
            &["release", "new", "backend/release.ocu.star", "-q"],
        );
        let results = fleet.all_at_once(&agents, &["work", "cascade", "-q"]);
        for (i, r) in results.iter().enumerate() {
            if r.code != Some(0) {
                problems.push(format!("round {round}: agent{i}: {}", describe(r)));
            }
        }
        let runs = fleet.all_runs(frontend);
        for env in envs {
            let r = runs
                .get(&format!("deploy/{env}"))
                .cloned()
                .unwrap_or_default();
            let want: Vec<(u32, String)> = (1..=round as u32 + 1)
                .map(|n| (n, "complete".to_string()))
                .collect();
            if r != want {
                problems.push(format!(
                    "round {round}: the frontend's deploy to {env} has runs {r:?}, expected {want:?}"
                ));
            }
            let lines = fleet.log_lines(&format!("frontend-{env}"));
            let url = format!("https://api.{env}.example.com/{version}");
            let with_url = lines.iter().filter(|l| **l == url).count();
            if lines.len() != round + 1 || with_url != 1 {
                problems.push(format!(
                    "round {round}: the frontend's up ran in {env} with {lines:?}, \
                     expected once more, with {url}"
                ));
            }
            if with_url > 1 {
                doubles += 1;
            }
        }
    }
    println!(
        "fleet four_agents_cascade [{}]: {rounds} rounds, {doubles} redeploys done more than once; \
         {} problems; {:.1}s",
        store.name(),
        problems.len(),
        started.elapsed().as_secs_f32()
    );
    assert_no_problems("four agents cascading", store, &problems);
}
