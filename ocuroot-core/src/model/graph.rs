//! The dependency graph across packages.
//!
//! Nodes are the work items of packages (`task/<name>`, `deploy/<env>`),
//! environments and custom state; an edge runs from what an input reads to
//! the work item reading it. The graph gives the order in which work must
//! be brought up to date after something changed (dependencies first), and
//! refuses a cycle with an error naming every node on it.
//!
//! A work item reading its own state (a deploy reading its previous
//! `@/deploy/<env>` output, a task its previous call) is not a dependency:
//! it would be a cycle of one that means "the last value", not "wait".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Package, Work};
use crate::refs::{Ref, SubPathType, WorkPath};
use crate::{Error, Result};

/// A node of the [`DependencyGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Node {
    /// A task or deployment of a package.
    Work {
        /// The package: `<repo>/-/<path>.ocu.star`.
        package: String,
        /// `task/<name>` or `deploy/<env>`.
        work: String,
    },
    /// An environment (`@/environment/<name>`).
    Environment {
        /// Its name.
        name: String,
    },
    /// Custom state (a `.../custom/<name>` ref, without fragment).
    Custom {
        /// The ref.
        r#ref: String,
    },
}

impl Node {
    /// The work item `work` (`task/<name>` or `deploy/<env>`) of `package`.
    pub fn work(package: &Ref, work: &WorkPath) -> Node {
        Node::Work {
            package: package.package().to_string(),
            work: work.to_string(),
        }
    }

    /// What an input reading `r` (an absolute ref) depends on, if anything
    /// the graph tracks: a work item, an environment or custom state.
    pub fn of_ref(r: &Ref) -> Option<Node> {
        match r.subpath_type? {
            SubPathType::Task | SubPathType::Deploy => {
                if r.global || r.filename.is_empty() {
                    return None;
                }
                Some(Node::work(r, &WorkPath::of_ref(r)?))
            }
            SubPathType::Environment => {
                let name = r.subpath.split('/').next().filter(|n| !n.is_empty())?;
                Some(Node::Environment {
                    name: name.to_string(),
                })
            }
            SubPathType::Custom => Some(Node::Custom {
                r#ref: r.without_fragment().to_string(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for Node {
    /// `a/-/x.ocu.star deploy staging`, `environment staging`, `custom
    /// state <ref>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Work { package, work } => {
                let (kind, name) = work.split_once('/').unwrap_or((work, ""));
                write!(f, "{package} {kind} {name}")
            }
            Node::Environment { name } => write!(f, "environment {name}"),
            Node::Custom { r#ref } => write!(f, "custom state {ref}"),
        }
    }
}

/// Work items, environments and custom state, with an edge from each
/// dependency to its dependants.
#[derive(Debug, Default, Clone)]
pub struct DependencyGraph {
    graph: DiGraph<Node, ()>,
    index: BTreeMap<Node, NodeIndex>,
}

impl DependencyGraph {
    /// An empty graph.
    pub fn new() -> Self {
        DependencyGraph::default()
    }

    fn node(&mut self, node: Node) -> NodeIndex {
        if let Some(&i) = self.index.get(&node) {
            return i;
        }
        let i = self.graph.add_node(node.clone());
        self.index.insert(node, i);
        i
    }

    /// Add a node with no edges (nothing if it is there already).
    pub fn add_node(&mut self, node: Node) {
        self.node(node);
    }

    /// Record that `dependant` reads `dependency`. A node depending on
    /// itself is ignored (see the module docs).
    pub fn add_dependency(&mut self, dependency: Node, dependant: Node) {
        if dependency == dependant {
            return;
        }
        let from = self.node(dependency);
        let to = self.node(dependant);
        self.graph.update_edge(from, to, ());
    }

    /// Add the work of `package` (whose ref is `package_ref`, any release or
    /// none) with what each work item reads: its inputs' refs, and for a
    /// deployment its environment. Phases are not edges: they order work
    /// within one release, which the scheduler already does.
    pub fn add_package(&mut self, package_ref: &Ref, package: &Package) {
        for (_, work) in package.work() {
            let node = Node::work(package_ref, &work.path());
            self.add_node(node.clone());
            if let Work::Deploy(d) = work {
                let env = Node::Environment {
                    name: d.environment.to_string(),
                };
                self.add_dependency(env, node.clone());
            }
            for input in work.inputs().values() {
                if let Some(dep) = input.as_ref().and_then(Node::of_ref) {
                    self.add_dependency(dep, node.clone());
                }
            }
        }
    }

    /// Every node, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.index.keys()
    }

    /// Whether the graph has `node`.
    pub fn contains(&self, node: &Node) -> bool {
        self.index.contains_key(node)
    }

    fn neighbours(&self, node: &Node, dir: Direction) -> Vec<&Node> {
        let Some(&i) = self.index.get(node) else {
            return Vec::new();
        };
        let mut out: Vec<&Node> = self
            .graph
            .neighbors_directed(i, dir)
            .map(|n| &self.graph[n])
            .collect();
        out.sort();
        out
    }

    /// What `node` reads directly, sorted.
    pub fn dependencies(&self, node: &Node) -> Vec<&Node> {
        self.neighbours(node, Direction::Incoming)
    }

    /// What reads `node` directly, sorted.
    pub fn dependants(&self, node: &Node) -> Vec<&Node> {
        self.neighbours(node, Direction::Outgoing)
    }

    /// A cycle, if there is one: its nodes in edge order, starting from the
    /// smallest. With several cycles, the one through the smallest node of
    /// the first strongly connected component found.
    pub fn cycle(&self) -> Option<Vec<&Node>> {
        let mut components: Vec<Vec<NodeIndex>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect();
        for c in &mut components {
            c.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        }
        components.sort_by(|a, b| self.graph[a[0]].cmp(&self.graph[b[0]]));
        let component = components.first()?;
        let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
        // Walk from the smallest node, always to the smallest next member
        // not yet on the path, until an edge leads back to the start. In a
        // strongly connected component such a walk exists; backtrack when a
        // branch dead-ends.
        let start = component[0];
        let mut path = vec![start];
        let mut on_path: BTreeSet<NodeIndex> = [start].into();
        let mut choices: Vec<Vec<NodeIndex>> = vec![self.next_in(start, &members)];
        while let Some(options) = choices.last_mut() {
            let at = *path.last()?;
            if self.graph.contains_edge(at, start) && path.len() > 1 {
                return Some(path.iter().map(|&i| &self.graph[i]).collect());
            }
            match options.iter().position(|n| !on_path.contains(n)) {
                Some(k) => {
                    let next = options.remove(k);
                    path.push(next);
                    on_path.insert(next);
                    choices.push(self.next_in(next, &members));
                }
                None => {
                    choices.pop();
                    if let Some(done) = path.pop() {
                        on_path.remove(&done);
                    }
                }
            }
        }
        None
    }

    /// The successors of `at` within `members`, smallest first.
    fn next_in(&self, at: NodeIndex, members: &BTreeSet<NodeIndex>) -> Vec<NodeIndex> {
        let mut next: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(at, Direction::Outgoing)
            .filter(|n| members.contains(n))
            .collect();
        next.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        next
    }

    /// The error for a cycle: every node on it, in order.
    fn cycle_error(cycle: &[&Node]) -> Error {
        let mut text: Vec<String> = cycle.iter().map(|n| n.to_string()).collect();
        text.push("back to the first".to_string());
        Error::validation(format!("dependency cycle: {}", text.join(" -> ")))
    }

    /// Every node, each after everything it depends on; among nodes free to
    /// go, the smallest first (so the order is the same on every run). A
    /// cycle is an error naming every node on it.
    pub fn order(&self) -> Result<Vec<&Node>> {
        self.order_of(self.graph.node_indices())
    }

    /// `changed` and everything downstream of it (what reads it, directly
    /// or not), in [`order`](DependencyGraph::order). Nodes the graph does
    /// not have are ignored. A cycle among them is an error.
    pub fn downstream(&self, changed: &[Node]) -> Result<Vec<&Node>> {
        let mut seen: BTreeSet<NodeIndex> = BTreeSet::new();
        let mut stack: Vec<NodeIndex> = changed
            .iter()
            .filter_map(|n| self.index.get(n).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if seen.insert(i) {
                stack.extend(self.graph.neighbors_directed(i, Direction::Outgoing));
            }
        }
        self.order_of(seen.into_iter())
    }

    /// Kahn's algorithm over the subgraph of `nodes`.
    fn order_of(&self, nodes: impl Iterator<Item = NodeIndex>) -> Result<Vec<&Node>> {
        let nodes: BTreeSet<NodeIndex> = nodes.collect();
        let mut waiting: BTreeMap<NodeIndex, usize> = nodes
            .iter()
            .map(|&i| {
                let n = self
                    .graph
                    .neighbors_directed(i, Direction::Incoming)
                    .filter(|d| nodes.contains(d))
                    .count();
                (i, n)
            })
            .collect();
        let mut ready: BTreeSet<(&Node, NodeIndex)> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(&i, _)| (&self.graph[i], i))
            .collect();
        let mut out = Vec::with_capacity(nodes.len());
        while let Some((node, i)) = ready.pop_first() {
            out.push(node);
            for next in self.graph.neighbors_directed(i, Direction::Outgoing) {
                if let Some(n) = waiting.get_mut(&next) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert((&self.graph[next], next));
                    }
                }
            }
        }
        if out.len() < nodes.len() {
            let cycle = self
                .cycle()
                .ok_or_else(|| Error::internal("the dependency order stalled without a cycle"))?;
            return Err(Self::cycle_error(&cycle));
        }
        Ok(out)
    }

    /// The graph as a Mermaid flowchart (`flowchart LR`), nodes and edges
    /// sorted.
    pub fn to_mermaid(&self) -> String {
        let ids = self.ids();
        let mut out = String::from("flowchart LR\n");
        for (node, id) in &ids {
            let label = node.to_string().replace('"', "#quot;");
            out.push_str(&format!("  {id}[\"{label}\"]\n"));
        }
        for (from, to) in self.edges() {
            out.push_str(&format!("  {} --> {}\n", ids[from], ids[to]));
        }
        out
    }

    /// The graph in Graphviz `dot`, nodes and edges sorted.
    pub fn to_dot(&self) -> String {
        let ids = self.ids();
        let mut out = String::from("digraph ocuroot {\n  rankdir=LR;\n");
        for (node, id) in &ids {
            let label = node.to_string().replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("  {id} [label=\"{label}\"];\n"));
        }
        for (from, to) in self.edges() {
            out.push_str(&format!("  {} -> {};\n", ids[from], ids[to]));
        }
        out.push_str("}\n");
        out
    }

    /// A short id per node (`n0`, `n1`... in node order).
    fn ids(&self) -> BTreeMap<&Node, String> {
        self.index
            .keys()
            .enumerate()
            .map(|(k, node)| (node, format!("n{k}")))
            .collect()
    }

    /// Every edge (dependency, dependant), sorted.
    fn edges(&self) -> Vec<(&Node, &Node)> {
        let mut edges: Vec<(&Node, &Node)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| (&self.graph[a], &self.graph[b]))
            .collect();
        edges.sort();
        edges
    }
}
