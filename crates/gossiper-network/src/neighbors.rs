//! A node's candidate peers, either listed or implicit.

use gossiper_types::NodeId;

/// The peers a node may gossip with.
///
/// A million-node complete graph would need a trillion list entries, so the complete graph is
/// implicit: every node `0..n` except the asking node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Neighbors<'a> {
    /// An explicit list (never containing the node itself, no duplicates).
    List(&'a [NodeId]),
    /// Every node `0..n` but `me`.
    Complete {
        /// Number of nodes in the graph.
        n: u64,
        /// The node asking, excluded from the candidates.
        me: NodeId,
    },
}

impl Neighbors<'_> {
    /// Number of candidates.
    pub fn len(&self) -> usize {
        match *self {
            Neighbors::List(l) => l.len(),
            Neighbors::Complete { n, me } => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if me.0 < n as u64 { n - 1 } else { n }
            }
        }
    }

    /// True when there is nobody to talk to.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th candidate, `i < len()`.
    pub fn get(&self, i: usize) -> NodeId {
        match *self {
            Neighbors::List(l) => l[i],
            Neighbors::Complete { n, me } => {
                let i = i as u64;
                if me.0 < n && i >= me.0 {
                    NodeId(i + 1)
                } else {
                    NodeId(i)
                }
            }
        }
    }

    /// Position of `id` among the candidates, if it is one.
    pub fn position(&self, id: NodeId) -> Option<usize> {
        match *self {
            Neighbors::List(l) => l.iter().position(|&x| x == id),
            Neighbors::Complete { n, me } => {
                if id == me || id.0 >= n {
                    None
                } else if me.0 < n && id.0 > me.0 {
                    Some((id.0 - 1) as usize)
                } else {
                    Some(id.0 as usize)
                }
            }
        }
    }

    /// Iterates over all candidates.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_graph_skips_self() {
        let nb = Neighbors::Complete {
            n: 5,
            me: NodeId(2),
        };
        let all: Vec<_> = nb.iter().map(|n| n.0).collect();
        assert_eq!(all, [0, 1, 3, 4]);
        for (i, id) in nb.iter().enumerate() {
            assert_eq!(nb.position(id), Some(i));
        }
        assert_eq!(nb.position(NodeId(2)), None);
        assert_eq!(nb.position(NodeId(5)), None);
    }
}
