//! The delete confirmation follows the disk: while it is open, a batch that changes what it
//! would take (a file grown or added below a target, a target gone) has the worker count it
//! again, and the dialog comes back with the new count, saying it changed and with **No**
//! focused, so `y` never confirms a size the user was not shown. The worker's own check
//! (`delete::worker`) still refuses anything changed after `y`.

use super::delete::Dialog;
use super::{App, Command, Sel};
use crate::delete::Target;
use crate::delete::worker::Job;
use crate::tree::{NodeRef, Tree};

/// What the open confirmation was counted from, by handle, and the tree's totals for it then.
#[derive(Debug, Clone, Default)]
pub struct Followed {
    targets: Vec<NodeRef>,
    /// Disk usage and items of the targets as the tree had them (`None`: one is gone).
    totals: Option<(u64, u64)>,
}

impl App {
    /// The entries `d` and `D` act on: the marked ones, else the selected one.
    fn delete_targets(&self, tree: &Tree) -> Vec<NodeRef> {
        let mut refs: Vec<NodeRef> = self
            .marked
            .iter()
            .copied()
            .filter(|&m| tree.resolve(m).is_some())
            .collect();
        if refs.is_empty()
            && let Sel::Node(id) = self.selected
        {
            refs.push(tree.node_ref(id));
        }
        refs
    }

    /// Notes what a delete being counted is about (called as its count starts).
    pub(super) fn follow_delete(&mut self, tree: &Tree) {
        let targets = self.delete_targets(tree);
        let totals = totals(tree, &targets);
        self.delete_followed = Followed { targets, totals };
    }

    /// After a batch or a pass: the confirmation counted again if what it would take changed.
    pub(super) fn delete_follows(&mut self, tree: &Tree) {
        if !matches!(self.delete.dialog, Some(Dialog::Confirm { .. })) {
            return;
        }
        let now = totals(tree, &self.delete_followed.targets);
        if now == self.delete_followed.totals {
            return;
        }
        self.delete_followed.totals = now;
        let Some(Dialog::Confirm { trash, .. }) = self.delete.dialog else {
            return;
        };
        let targets: Vec<Target> = (self.delete_followed.targets.iter())
            .filter_map(|&r| tree.resolve(r))
            .map(|id| Target::of(tree, id))
            .collect();
        if targets.is_empty() {
            // All of it went: nothing left to ask about.
            self.delete.dialog = None;
            self.message = Some("what the dialog would delete is gone from the disk".into());
            return;
        }
        // `again`: the new count is confirmed whatever "don't ask again" said.
        self.delete.dialog = Some(Dialog::Counting {
            trash,
            again: true,
            items: 0,
            cancelling: false,
        });
        self.commands
            .push(Command::Delete(Job::Plan(crate::delete::outermost(
                targets,
            ))));
    }
}

/// The targets' disk usage and items in the tree, `None` if one is gone.
fn totals(tree: &Tree, targets: &[NodeRef]) -> Option<(u64, u64)> {
    targets.iter().try_fold((0, 0), |(disk, items), &r| {
        let t = tree.totals(tree.resolve(r)?);
        Some((disk + t.disk, items + t.items))
    })
}
