//! Where each node of a YAML file stands, so that errors found after deserialising (an unknown
//! role, an event type nobody declared) still point at `file:line:column`.
//!
//! serde_yaml reports positions only for errors it finds itself; this second, read-only pass over
//! the same text records the position of every node under a path such as
//! `rules[3].escalations[1].to[0]`. Owns nothing but that map.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Positions (1-based line and column) of the nodes of one YAML document, by path.
#[derive(Debug, Default)]
pub struct Locator {
    positions: HashMap<String, (usize, usize)>,
}

enum Frame {
    /// A mapping: the path of the mapping and the key waiting for its value, if any.
    Map { path: String, key: Option<String> },
    /// A sequence: the path of the sequence and the index of its next item.
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
}

impl Recorder {
    /// The path of the node starting now, advancing the parent's state. `None` means the node is
    /// a mapping key.
    fn next_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) if path.is_empty() => Some(k),
                Some(k) => Some(format!("{path}.{k}")),
                None => None,
            },
        }
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.positions
            .entry(path.to_string())
            .or_insert((mark.line(), mark.col() + 1));
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => match self.next_path() {
                Some(path) => self.record(&path, mark),
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let full = if path.is_empty() {
                            text.clone()
                        } else {
                            format!("{path}.{text}")
                        };
                        *key = Some(text);
                        self.positions
                            .entry(format!("{full}#key"))
                            .or_insert((mark.line(), mark.col() + 1));
                    }
                }
            },
            Event::Alias(_) => {
                self.next_path();
            }
            Event::SequenceStart(..) => {
                let path = self.next_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingStart(..) => {
                let path = self.next_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Locator {
    /// Records the positions in `text`. Text that does not parse gives an empty locator: serde_yaml
    /// reports the syntax error itself.
    pub fn new(text: &str) -> Locator {
        let mut recorder = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut recorder, false).is_err() {
            return Locator::default();
        }
        Locator {
            positions: recorder.positions,
        }
    }

    /// The position of the node at `path`, or of its nearest recorded ancestor.
    pub fn at(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The position of the key naming the entry at `path` (for "unknown name" errors).
    pub fn key_at(&self, path: &str) -> Option<(usize, usize)> {
        self.positions
            .get(&format!("{path}#key"))
            .copied()
            .or_else(|| self.at(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_nodes_with_one_based_columns() {
        let text = "rules:\n  - id: a\n    to: [iro, sw]\n    due:\n      offset: 3 days\n";
        let loc = Locator::new(text);
        assert_eq!(loc.at("rules[0].id"), Some((2, 9)));
        assert_eq!(loc.at("rules[0].to[1]"), Some((3, 15)));
        assert_eq!(loc.at("rules[0].due.offset"), Some((5, 15)));
        assert_eq!(loc.key_at("rules[0].due"), Some((4, 5)));
        // An unknown path falls back to its nearest ancestor.
        assert_eq!(loc.at("rules[0].due.nothing"), loc.at("rules[0].due"));
    }
}
