//! The plan page: the outstanding work, and the dependency graph drawn as
//! SVG on the server (columns by depth, dependencies to the left), so the
//! picture needs no script and nothing from the internet.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use maud::{Markup, html};
use ocuroot_core::model::{DependencyGraph, Node, Plan};
use ocuroot_core::refs::{Ref, WorkPath};

use super::layout::{badge, page, reference};
use super::links::Site;

const ROW: i64 = 40;
const BOX_H: i64 = 30;
const GAP_X: i64 = 70;
const MARGIN: i64 = 12;
const CHAR_W: i64 = 7;

/// Two lines of a node's label: what it belongs to, and what it is.
fn label(node: &Node) -> (String, String) {
    match node {
        Node::Work { package, work } => {
            let file = package.split("/-/").nth(1).unwrap_or(package).to_string();
            (file, work.clone())
        }
        Node::Environment { name } => ("environment".into(), name.clone()),
        Node::Custom { r#ref } => ("custom state".into(), r#ref.clone()),
    }
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Work { work, .. } if work.starts_with("deploy/") => "deploy",
        Node::Work { .. } => "task",
        Node::Environment { .. } => "environment",
        Node::Custom { .. } => "custom",
    }
}

/// Placed nodes: column by depth (longest chain of dependencies), rows in
/// name order.
struct Placed<'a> {
    at: HashMap<&'a Node, (i64, i64, i64)>,
    width: i64,
    height: i64,
}

fn place(graph: &DependencyGraph) -> Placed<'_> {
    let order: Vec<&Node> = graph.order().unwrap_or_else(|_| graph.nodes().collect());
    let mut depth: HashMap<&Node, usize> = HashMap::new();
    for n in &order {
        let d = graph
            .dependencies(n)
            .iter()
            .filter_map(|dep| depth.get(dep).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        depth.insert(n, d);
    }
    let mut columns: BTreeMap<usize, BTreeSet<&Node>> = BTreeMap::new();
    for (n, d) in &depth {
        columns.entry(*d).or_default().insert(n);
    }
    let mut at = HashMap::new();
    let (mut x, mut height) = (MARGIN, 0);
    for nodes in columns.values() {
        let w = nodes
            .iter()
            .map(|n| {
                let (a, b) = label(n);
                a.chars().count().max(b.chars().count()) as i64
            })
            .max()
            .unwrap_or(8)
            * CHAR_W
            + 20;
        for (row, n) in nodes.iter().enumerate() {
            let y = MARGIN + row as i64 * (ROW + BOX_H / 2);
            at.insert(*n, (x, y, w));
            height = height.max(y + ROW + MARGIN);
        }
        x += w + GAP_X;
    }
    Placed {
        at,
        width: x - GAP_X + MARGIN,
        height,
    }
}

/// The graph as an SVG picture; `busy` nodes (with outstanding work) are
/// outlined.
pub(crate) fn svg(graph: &DependencyGraph, busy: &BTreeSet<Node>) -> Markup {
    let placed = place(graph);
    let mut nodes: Vec<(&&Node, &(i64, i64, i64))> = placed.at.iter().collect();
    nodes.sort();
    html! {
        svg #graph xmlns="http://www.w3.org/2000/svg" width=(placed.width.max(200)) height=(placed.height.max(60))
            viewBox={ "0 0 " (placed.width.max(200)) " " (placed.height.max(60)) } role="img" aria-label="dependency graph" {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#98a2b3" {}
                }
            }
            @for (n, (x, y, _)) in &nodes {
                @for dep in graph.dependencies(n) {
                    @if let Some((dx, dy, dw)) = placed.at.get(dep) {
                        @let (x1, y1, x2, y2) = (dx + dw, dy + BOX_H / 2, *x, y + BOX_H / 2);
                        @let mid = (x1 + x2) / 2;
                        path d={ "M " (x1) " " (y1) " C " (mid) " " (y1) ", " (mid) " " (y2) ", " (x2) " " (y2) }
                            fill="none" stroke="#98a2b3" stroke-width="1.3" marker-end="url(#arrow)" {}
                    }
                }
            }
            @for (n, (x, y, w)) in &nodes {
                @let (top, main) = label(n);
                @let k = kind(n);
                @let fill = match k { "deploy" => "#eff8ff", "task" => "#f2f4f7", "environment" => "#e7f6ec", _ => "#fffaeb" };
                g class={ "node node-" (k) } {
                    title { (n.to_string()) }
                    rect x=(x) y=(y) width=(w) height=(BOX_H + 8) rx="5" fill=(fill)
                        stroke=(if busy.contains(*n) { "#b54708" } else { "#d0d5dd" })
                        stroke-width=(if busy.contains(*n) { "2.5" } else { "1" }) {}
                    text x=(x + 8) y=(y + 13) fill="#667085" font-size="10" { (top) }
                    text x=(x + 8) y=(y + 30) fill="#1d2330" font-weight="600" { (main) }
                }
            }
        }
    }
}

/// The node a todo's ref is about, if the graph has one.
fn node_of(r: &Ref) -> Option<Node> {
    let work = WorkPath::of_ref(r)?;
    Some(Node::work(&r.package(), &work))
}

/// The plan: outstanding work in order, why, what it waits for; the graph.
pub(crate) fn plan(site: &Site, plan: &Plan) -> Markup {
    let busy: BTreeSet<Node> = plan.work.iter().filter_map(|t| node_of(&t.r#ref)).collect();
    let body = html! {
        h1 { "Plan and graph" }
        div.sub { "What " code { "ocuroot work cascade" } " would do, in order, and what waits." }
        h2 { "Outstanding work" }
        @if plan.work.is_empty() {
            p.muted { "Nothing outstanding." }
        } @else {
            table #plan {
                tr { th { "ref" } th { "kind" } th { "commit" } th { "why" } th { "waits for" } }
                @for t in &plan.work {
                    tr {
                        td {
                            @if t.r#ref.release_number().is_some() {
                                a href=(site.release(&t.r#ref.release_ref())) { code { (t.r#ref) } }
                            } @else {
                                (reference(site, &t.r#ref.to_string()))
                            }
                        }
                        td { (badge(if t.is_ready() { t.work_type.as_str() } else { "waiting" })) }
                        td { @if let Some(c) = &t.commit { code { (c.get(..8).unwrap_or(c)) } } }
                        td { (t.reason) }
                        td { @for w in &t.waits_for { div { code { (w) } } } }
                    }
                }
            }
        }
        h2 { "Dependency graph" }
        p.small.muted { "Each arrow goes from what is read to what reads it. Outlined: work outstanding." }
        @if plan.graph.nodes().next().is_none() {
            p.muted { "No packages released yet." }
        } @else {
            div style="overflow:auto; background:#fff; border:1px solid #e4e7ec" { (svg(&plan.graph, &busy)) }
        }
    };
    page(site, "plan", false, body)
}
