//! `ocuroot plan`: the outstanding work everywhere, in dependency order,
//! each item with why it would run or what it waits for, and the
//! dependency graph it was ordered by.

use serde::Serialize;

use super::EngineContext;
use super::cascade::{graph, order};
use super::work::{self, Finding, Scope, Todo};
use crate::Result;
use crate::graph::DependencyGraph;

/// The work a cascade would do and the work that waits, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Every item, dependencies first; ready ones have no `waits_for`.
    pub work: Vec<Todo>,
    /// The dependency graph of the latest release of every package.
    pub graph: DependencyGraph,
}

/// A node of the plan's graph and what it reads, for the JSON form.
#[derive(Debug, Clone, Serialize)]
struct GraphNode {
    node: String,
    depends_on: Vec<String>,
}

impl Plan {
    /// The JSON form: `{"work": [...], "graph": [{"node", "depends_on"}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<GraphNode> = self
            .graph
            .nodes()
            .map(|n| GraphNode {
                node: n.to_string(),
                depends_on: self
                    .graph
                    .dependencies(n)
                    .into_iter()
                    .map(|d| d.to_string())
                    .collect(),
            })
            .collect();
        serde_json::json!({ "work": self.work, "graph": nodes })
    }

    /// The work that can be done now.
    pub fn ready(&self) -> impl Iterator<Item = &Todo> {
        self.work.iter().filter(|t| t.is_ready())
    }
}

/// Build the plan. A dependency cycle is an error naming every node on it.
pub fn plan(ctx: &EngineContext) -> Result<Plan> {
    let graph = graph(ctx)?;
    let finding = Finding {
        intent: true,
        waiting: true,
        ..Finding::WORK
    };
    let mut found = work::find(ctx, Scope::Everywhere, finding)?;
    order(&graph, &mut found)?;
    Ok(Plan {
        work: found.into_iter().map(|f| f.todo).collect(),
        graph,
    })
}
