//! `ocuroot mcp`: the built binary driven over stdin and stdout as an MCP
//! client drives it (JSON-RPC, one message a line): the handshake, the
//! tool list, a call of every tool, tool errors and a protocol error, in a
//! repository with a release waiting for an approval.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

use super::support::{Repo, ocu, std_ocuroot_in};

/// A running `ocuroot mcp` and the lines it printed.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    next_id: u64,
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Client {
    fn start(repo: &Repo) -> Client {
        let mut child = std_ocuroot_in(repo.path())
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ocuroot mcp starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Client {
            child,
            stdin,
            lines,
            next_id: 1,
        }
    }

    fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next message from the server: every line it prints is one.
    fn receive(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the server answers within 2 minutes");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the server printed a line that is not JSON ({e}): {line}"))
    }

    /// Send a request and return the response with its id.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.receive();
            if message["id"] == json!(id) {
                assert_eq!(message["jsonrpc"], "2.0", "{message}");
                return message;
            }
            // Notifications (logging, list changes) may come in between.
            assert!(
                message.get("id").is_none(),
                "an answer to another request: {message}"
            );
        }
    }

    /// `tools/call`: the result (which must not be a protocol error).
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let response = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        assert!(response.get("error").is_none(), "{tool}: {response}");
        response["result"].clone()
    }

    /// A successful call's text content, joined.
    #[track_caller]
    fn text(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments.clone());
        assert_ne!(
            result["isError"],
            json!(true),
            "{tool} {arguments}: {result}"
        );
        texts(&result).join("")
    }

    /// A call that fails as a tool error: its message.
    #[track_caller]
    fn tool_error(&mut self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments.clone());
        assert_eq!(
            result["isError"],
            json!(true),
            "{tool} {arguments}: {result}"
        );
        texts(&result).join("")
    }
}

fn texts(result: &Value) -> Vec<String> {
    result["content"]
        .as_array()
        .unwrap_or_else(|| panic!("no content in {result}"))
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "text", "{c}");
            c["text"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn an_mcp_client_lists_and_calls_every_tool() {
    let repo = super::preview::repo();
    ocu(&repo, &["release", "new", "web.ocu.star"]).success();
    let mut client = Client::start(&repo);

    // The handshake.
    let init = client.request(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "ocuroot-test", "version": "1"}
        }),
    );
    let result = &init["result"];
    assert_eq!(result["protocolVersion"], "2025-06-18", "{init}");
    assert_eq!(result["serverInfo"]["name"], "ocuroot", "{init}");
    assert_eq!(
        result["serverInfo"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{init}"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{init}");
    client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    // The tools, each with a schema for its arguments.
    let list = client.request("tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().expect("tools").clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "example_get",
            "example_list",
            "plan",
            "preview",
            "release_status",
            "sdk",
            "state_get",
            "state_match"
        ]
    );
    let schema =
        |name: &str| tools.iter().find(|t| t["name"] == name).unwrap()["inputSchema"].clone();
    for (tool, required) in [
        ("preview", "package_file"),
        ("sdk", "version"),
        ("example_get", "name"),
        ("state_get", "ref"),
        ("state_match", "glob"),
        ("release_status", "ref"),
    ] {
        let s = schema(tool);
        assert_eq!(s["type"], "object", "{tool}: {s}");
        assert_eq!(s["required"], json!([required]), "{tool}: {s}");
        assert!(tools.iter().find(|t| t["name"] == tool).unwrap()["description"].is_string());
    }

    // preview: the lint's text, then its JSON.
    let result = client.call("preview", json!({"package_file": "web.ocu.star"}));
    assert_ne!(result["isError"], json!(true), "{result}");
    let parts = texts(&result);
    assert_eq!(parts.len(), 2, "{result}");
    assert!(parts[0].contains("Phase 2 \"staging\""), "{}", parts[0]);
    assert!(
        parts[0].contains("Deployment to \"production\""),
        "{}",
        parts[0]
    );
    let lint: Value = serde_json::from_str(&parts[1]).unwrap();
    assert_eq!(lint["file"], "web.ocu.star");
    assert_eq!(lint["base"], "shop/-/web.ocu.star/@r2");
    assert_eq!(lint["package"]["phases"][2]["name"], "production");
    let absolute = repo.path().join("web.ocu.star");
    let by_path = client.text(
        "preview",
        json!({"package_file": absolute.to_str().unwrap()}),
    );
    assert!(by_path.contains("Phase 3 \"production\""), "{by_path}");
    let missing = client.tool_error("preview", json!({"package_file": "nope.ocu.star"}));
    assert!(
        missing.contains("package path does not exist: nope.ocu.star"),
        "{missing}"
    );
    repo.write(
        "bad.ocu.star",
        "ocuroot(\"0.3.0\")\nphase(\"x\", tasks=[nowhere])\n",
    );
    let bad = client.tool_error("preview", json!({"package_file": "bad.ocu.star"}));
    assert!(bad.contains("bad.ocu.star:2:"), "{bad}");
    assert!(bad.contains("nowhere"), "{bad}");

    // sdk: the stub files, by version or `latest`.
    let sdk = client.text("sdk", json!({"version": "latest"}));
    for part in [
        "#### README.md ####",
        "#### package.star ####",
        "def deploy(",
        "def phase(",
        "#### host.star ####",
        "def shell(",
    ] {
        assert!(sdk.contains(part), "{part} not in the SDK:\n{sdk}");
    }
    assert_eq!(client.text("sdk", json!({"version": "0.3.0"})), sdk);
    let unknown = client.tool_error("sdk", json!({"version": "9.9.9"}));
    assert!(unknown.contains("version 9.9.9 not found"), "{unknown}");

    // The examples, embedded when the binary was built.
    let list = client.text("example_list", json!({}));
    let examples: Vec<&str> = list.lines().collect();
    for name in ["agent", "dependencies", "quickstart"] {
        assert!(examples.contains(&name), "{name} not in {examples:?}");
    }
    assert!(!examples.contains(&"python"), "{examples:?}");
    let quickstart = client.text("example_get", json!({"name": "quickstart"}));
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/quickstart/release.ocu.star"),
    )
    .unwrap();
    assert!(
        quickstart.contains(&format!("#### release.ocu.star ####\n{on_disk}\n####")),
        "{quickstart}"
    );
    assert!(quickstart.contains("#### environments.ocu.star ####"));
    let nope = client.tool_error("example_get", json!({"name": "nope"}));
    assert!(nope.contains("no example named \"nope\""), "{nope}");

    // The state tools read the repository the server runs in.
    let version = client.text(
        "state_get",
        json!({"ref": "web.ocu.star/@r1/task/build#output/version"}),
    );
    assert_eq!(version, "\"1.0.0\"\n");
    let absent = client.tool_error("state_get", json!({"ref": "@/custom/nothing"}));
    assert_eq!(absent, "Error: ref not found: @/custom/nothing");
    let invalid = client.tool_error("state_get", json!({"ref": "a/../b"}));
    assert!(invalid.starts_with("Error: "), "{invalid}");

    let refs = client.text("state_match", json!({"glob": "**/@r1/task/*"}));
    assert_eq!(refs, "shop/-/web.ocu.star/@r1/task/build\n");
    let links = client.text("state_match", json!({"glob": "shop/-/web.ocu.star/@/**"}));
    assert!(
        links.contains("shop/-/web.ocu.star/@/deploy/staging\n"),
        "{links}"
    );
    let no_links = client.text(
        "state_match",
        json!({"glob": "shop/-/web.ocu.star/@/**", "no_links": true}),
    );
    assert_eq!(no_links, "No ref matches shop/-/web.ocu.star/@/**.\n");

    let status = client.text("release_status", json!({"ref": "web.ocu.star"}));
    assert!(status.contains("shop/-/web.ocu.star/@r1"), "{status}");
    assert!(status.contains("custom/approval"), "{status}");
    let report: Value = serde_json::from_str(&client.text(
        "release_status",
        json!({"ref": "web.ocu.star/@r1", "json": true}),
    ))
    .unwrap();
    assert_eq!(report["status"], "blocked", "{report}");
    let no_release = client.tool_error("release_status", json!({"ref": "web.ocu.star/@r9"}));
    assert!(no_release.contains("not found"), "{no_release}");

    let plan = client.text("plan", json!({}));
    assert!(plan.contains("custom/approval"), "{plan}");
    let mermaid = client.text("plan", json!({"format": "mermaid"}));
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    let plan_json: Value =
        serde_json::from_str(&client.text("plan", json!({"format": "json"}))).unwrap();
    assert!(plan_json["work"].is_array(), "{plan_json}");

    // Arguments that do not fit the schema: a tool error naming the value.
    let bad_format = client.tool_error("plan", json!({"format": "pdf"}));
    assert!(bad_format.contains("unknown variant `pdf`"), "{bad_format}");
    let missing_argument = client.tool_error("state_get", json!({}));
    assert!(
        missing_argument.contains("missing field `ref`"),
        "{missing_argument}"
    );
    // An unknown tool: a protocol error.
    let no_tool = client.request(
        "tools/call",
        json!({"name": "release_new", "arguments": {}}),
    );
    assert_eq!(no_tool["error"]["code"], json!(-32602), "{no_tool}");

    // Nothing was written: the release is still blocked, no second release.
    assert_eq!(
        ocu(&repo, &["state", "match", "**/@r2"]).success().stdout,
        ""
    );

    // Closing stdin ends the server.
    drop(client.stdin.take());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = client.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not exit when stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
