//! What the parse knows of the layer it is writing: every path this layer put something at,
//! by its path in the tar, and what is there now. The layer's directory starts empty and
//! nothing else writes in it, so this is what the directory holds (until a path is reached
//! through a symlink: plan.rs then stops trusting it and writes in tar order alone). It
//! tells which entries can be written by a worker at once (a new name in a directory that
//! is there) and which must wait (a path written before, a hardlink to a file a worker may
//! still be writing).

use std::collections::BTreeMap;

use super::entry::Meta;

/// What a path holds.
pub enum Node {
    /// A directory, with the metadata its last entry gave (none if it was made on the way).
    Dir(Option<Box<Meta>>),
    /// A whiteout.
    Whiteout,
    /// Anything else; written by the batch `seq` (0: written already).
    Other { seq: u64 },
}

#[derive(Default)]
pub struct Tree {
    nodes: BTreeMap<Vec<u8>, Node>,
}

impl Tree {
    pub fn get(&self, path: &[u8]) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn set(&mut self, path: &[u8], node: Node) {
        match self.nodes.get_mut(path) {
            Some(n) => *n = node,
            None => {
                self.nodes.insert(path.to_vec(), node);
            }
        }
    }

    /// `path` and everything beneath it are gone.
    pub fn remove(&mut self, path: &[u8]) {
        self.nodes.remove(path);
        remove_beneath(&mut self.nodes, path);
    }

    /// Whether something on the way to `path` (clean, relative) is no directory: reaching
    /// `path` would follow a symlink there, or fail.
    pub fn blocked(&self, path: &[u8]) -> bool {
        path.iter().enumerate().filter(|&(_, &b)| b == b'/').any(|(i, _)| matches!(self.nodes.get(&path[..i]), Some(Node::Whiteout | Node::Other { .. })))
    }

    /// `path` (clean, relative) and the directories on the way to it are directories, made
    /// on the way where they were not there.
    pub fn made_dirs(&mut self, path: &[u8]) {
        let ends = path.iter().enumerate().filter(|&(_, &b)| b == b'/').map(|(i, _)| i).chain([path.len()]);
        for end in ends {
            if !self.nodes.contains_key(&path[..end]) {
                self.nodes.insert(path[..end].to_vec(), Node::Dir(None));
            }
        }
    }

    /// The directories and their metadata, by path.
    pub fn dirs(self) -> impl Iterator<Item = (Vec<u8>, Meta)> {
        self.nodes.into_iter().filter_map(|(path, node)| match node {
            Node::Dir(Some(meta)) => Some((path, *meta)),
            _ => None,
        })
    }
}

/// Remove the keys beneath `path` (`path/...`) from `map`: as many steps as keys removed.
pub fn remove_beneath<V>(map: &mut BTreeMap<Vec<u8>, V>, path: &[u8]) {
    let mut from = path.to_vec();
    from.push(b'/');
    let mut to = from.clone();
    *to.last_mut().expect("not empty") = b'/' + 1;
    let gone: Vec<Vec<u8>> = map.range(from..to).map(|(k, _)| k.clone()).collect();
    for k in gone {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_path_takes_what_is_beneath_only() {
        let mut t = Tree::default();
        for p in ["a", "a/b", "a/b/c", "a-x", "a0", "ab", "b"] {
            t.set(p.as_bytes(), Node::Other { seq: 0 });
        }
        t.remove(b"a");
        let left: Vec<&[u8]> = t.nodes.keys().map(|k| k.as_slice()).collect();
        assert_eq!(left, [&b"a-x"[..], b"a0", b"ab", b"b"]);
    }

    #[test]
    fn blocked_paths() {
        let mut t = Tree::default();
        t.made_dirs(b"d/e");
        t.set(b"s", Node::Other { seq: 3 });
        t.set(b"d/w", Node::Whiteout);
        assert!(!t.blocked(b"d/e/f") && !t.blocked(b"x/y") && !t.blocked(b"s"));
        assert!(t.blocked(b"s/x") && t.blocked(b"d/w/x/y"));
        assert!(matches!(t.get(b"d"), Some(Node::Dir(None))));
    }
}
