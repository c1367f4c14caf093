//! Node identity: the Go demo's `Node` type, split into a compact id and user properties.

use std::collections::BTreeMap;
use std::fmt;

/// A node's identity: a compact integer so a million of them fit in a few megabytes.
///
/// Runtimes choose how ids are assigned: the simulator and the threaded demo number nodes
/// `0..n`; the UDP agent derives the id from the node's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

impl NodeId {
    /// The id as an index, for runtimes that number nodes `0..n`.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// A stable id for a node name (64-bit FNV-1a), for runtimes that name their nodes.
    pub fn from_name(name: &str) -> NodeId {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        NodeId(hash)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl From<u64> for NodeId {
    fn from(v: u64) -> Self {
        NodeId(v)
    }
}

/// A node as the application sees it: its id plus free-form properties (the Go demo's `Node`
/// struct, where users added their own fields).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The node's identity.
    pub id: NodeId,
    /// A human-readable name.
    pub name: String,
    /// User properties (region, role, ...), ordered so that printing is reproducible.
    pub properties: BTreeMap<String, String>,
}

impl Node {
    /// A node with an id, a name and no properties.
    pub fn new(id: NodeId, name: impl Into<String>) -> Node {
        Node {
            id,
            name: name.into(),
            properties: BTreeMap::new(),
        }
    }

    /// Adds a property, builder style.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Node {
        self.properties.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hash_stably_and_differently() {
        assert_eq!(NodeId::from_name("a"), NodeId::from_name("a"));
        assert_ne!(NodeId::from_name("a"), NodeId::from_name("b"));
        // FNV-1a of the empty string is the offset basis.
        assert_eq!(NodeId::from_name(""), NodeId(0xcbf2_9ce4_8422_2325));
    }

    #[test]
    fn node_builder_keeps_properties_sorted() {
        let n = Node::new(NodeId(3), "c")
            .with_property("zone", "b")
            .with_property("role", "db");
        let keys: Vec<_> = n.properties.keys().cloned().collect();
        assert_eq!(keys, ["role", "zone"]);
        assert_eq!(n.id.to_string(), "n3");
    }
}
