//! `ocuroot plan`: the outstanding work everywhere, in dependency order,
//! each item with why it would run or what it waits for, and the
//! dependency graph it was ordered by.

use super::EngineContext;
use super::cascade::order;
use super::deps::graph;
use super::work::{self, Finding, Scope};
use crate::Result;
use crate::model::Plan;

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
