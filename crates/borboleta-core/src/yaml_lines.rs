//! Where each value of a spec file is: the line of every YAML path (`feature_set.features[2].name`),
//! so that a problem found after parsing (a misspelt column, a bad window) names its line too.

use std::collections::HashMap;

use granit_parser::{Event, Parser};

use crate::error::SpecIssues;

/// The 1-based line of every path of a YAML document (a mapping value is at its key's line).
#[derive(Debug, Clone, Default)]
pub struct YamlLines(HashMap<String, usize>);

/// Source positions are metadata: two specs with the same content are equal wherever they came from.
impl PartialEq for YamlLines {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

enum Frame {
    Map { key: Option<(String, usize)> },
    Seq { next: usize },
}

/// What a node of a YAML document is.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A mapping key (its path is the path of its value).
    Key(String),
    /// A scalar value (or an alias).
    Scalar(String),
    /// A mapping value.
    Mapping,
    /// A sequence value.
    Sequence,
}

/// A node of a YAML document: where it starts and how long it is (in characters, as the parser
/// and serde-saphyr count them), its dotted path and its line (a mapping value is at its key's).
#[derive(Debug, Clone)]
struct Node {
    index: usize,
    len: usize,
    line: usize,
    path: String,
    kind: Kind,
}

/// The nodes of `text`, in document order; a document that does not parse gives the nodes
/// before the error.
fn nodes(text: &str) -> Vec<Node> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let (index, len, line) = (span.start.index(), span.len(), span.start.line());
        match event {
            Event::Scalar(..) | Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                let kind = match &event {
                    Event::Scalar(s, ..) => Kind::Scalar(s.to_string()),
                    Event::SequenceStart(..) => Kind::Sequence,
                    Event::MappingStart(..) => Kind::Mapping,
                    _ => Kind::Scalar(String::new()),
                };
                if let Some(Frame::Map { key: key @ None }) = stack.last_mut() {
                    // A key: its value is recorded when it starts.
                    let text = match &kind {
                        Kind::Scalar(s) => s.clone(),
                        _ => "?".to_string(),
                    };
                    *key = Some((text.clone(), line));
                    if let Some(path) = path_of(&stack) {
                        out.push(Node {
                            index,
                            len,
                            line,
                            path,
                            kind: Kind::Key(text),
                        });
                    }
                    if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
                        stack.push(frame_for(&event));
                    }
                    continue;
                }
                let at = match stack.last() {
                    Some(Frame::Map { key: Some((_, l)) }) => *l,
                    _ => line,
                };
                out.push(Node {
                    index,
                    len,
                    line: at,
                    path: path_of(&stack).unwrap_or_default(),
                    kind,
                });
                if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
                    stack.push(frame_for(&event));
                } else {
                    value_done(&mut stack);
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    out
}

/// The enclosing path of `path` (`a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``).
fn parent(path: &str) -> &str {
    path.rfind(['.', '[']).map_or("", |i| &path[..i])
}

/// Whether `path` is inside `base` (the document is inside everything).
fn is_under(path: &str, base: &str) -> bool {
    base.is_empty()
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The first `` `quoted` `` or `"quoted"` text of a message (the offending value).
fn quoted(message: &str) -> Option<&str> {
    let (open, close) = match (message.find('`'), message.find('"')) {
        (Some(b), Some(q)) if q < b => (q, '"'),
        (Some(b), _) => (b, '`'),
        (None, Some(q)) => (q, '"'),
        (None, None) => return None,
    };
    let rest = &message[open + 1..];
    rest.find(close).map(|end| &rest[..end])
}

/// The YAML path and line of a deserialization error of `text` at the node that starts at
/// character `index` and is `len` characters long (serde-saphyr's error location), given its
/// message. The line is the located node's, or that of the path found from it.
///
/// serde-saphyr points at the offending key (`unknown field`) or value (`invalid boolean`); at the
/// last key of a mapping that misses a field; and, for values it buffers (the `type`-tagged
/// readers, writers and transformations), at the buffered mapping or at its key. For those the
/// offending node is found inside it: the key named by the message, or the one value equal to the
/// text the message quotes.
pub fn error_path(text: &str, index: usize, len: usize, message: &str) -> Option<(String, usize)> {
    let nodes = nodes(text);
    let at: Vec<&Node> = nodes.iter().filter(|n| n.index == index).collect();
    let node = at.iter().find(|n| n.len == len).or_else(|| at.first())?;
    // the value of a key, or the node itself
    let value = |path: &str| {
        nodes
            .iter()
            .find(|n| n.path == path && !matches!(n.kind, Kind::Key(_)))
            .map(|n| &n.kind)
    };
    let container = match &node.kind {
        Kind::Mapping | Kind::Sequence => true,
        Kind::Key(_) => matches!(value(&node.path), Some(Kind::Mapping | Kind::Sequence)),
        Kind::Scalar(_) => false,
    };
    let inside = |pred: &dyn Fn(&Node) -> bool| {
        let mut found = nodes.iter().filter(|n| is_under(&n.path, &node.path) && pred(n));
        match (found.next(), found.next()) {
            (Some(n), None) => Some(n.path.clone()),
            _ => None,
        }
    };
    let path = if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        match &node.kind {
            Kind::Key(k) if k == field => node.path.clone(),
            _ => {
                inside(&|n| n.kind == Kind::Key(field.to_string())).unwrap_or_else(|| format!("{}.{field}", node.path))
            }
        }
    } else if message.starts_with("missing field `") {
        match &node.kind {
            // a buffered (tagged) value missing a field is reported at its key; a mapping
            // missing a field, at its last key
            Kind::Key(_) => {
                let tagged = nodes
                    .iter()
                    .any(|n| parent(&n.path) == node.path && n.kind == Kind::Key("type".into()));
                if tagged {
                    node.path.clone()
                } else {
                    parent(&node.path).to_string()
                }
            }
            _ => node.path.clone(),
        }
    } else if container {
        let by_value = quoted(message).and_then(|q| inside(&|n| n.kind == Kind::Scalar(q.to_string())));
        let by_kind = || {
            if message.starts_with("invalid type: sequence") {
                inside(&|n| n.kind == Kind::Sequence)
            } else if message.starts_with("invalid type: map") {
                inside(&|n| n.kind == Kind::Mapping)
            } else {
                None
            }
        };
        by_value.or_else(by_kind).unwrap_or_else(|| node.path.clone())
    } else {
        node.path.clone()
    };
    let line = if path == node.path {
        node.line
    } else {
        nodes.iter().find(|n| n.path == path).map_or(node.line, |n| n.line)
    };
    Some((path, line))
}

impl YamlLines {
    /// Indexes `text`; a document that does not parse gives what was indexed before the error.
    pub fn index(text: &str) -> Self {
        let mut lines = HashMap::new();
        for n in nodes(text) {
            if !matches!(n.kind, Kind::Key(_)) && !n.path.is_empty() {
                lines.entry(n.path).or_insert(n.line);
            }
        }
        Self(lines)
    }

    /// The line of `path`, or of its nearest enclosing path that has one
    /// (`readers[0].options.x` → the line of `readers[0].options`).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.0.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// Fills in the line of every issue that has none.
    pub fn locate(&self, issues: &mut SpecIssues) {
        for issue in &mut issues.0 {
            if issue.line.is_none() {
                issue.line = self.line_of(&issue.path);
            }
        }
    }
}

fn frame_for(event: &Event<'_>) -> Frame {
    match event {
        Event::SequenceStart(..) => Frame::Seq { next: 0 },
        _ => Frame::Map { key: None },
    }
}

/// A value of the top frame ended: the mapping awaits its next key, the sequence its next item.
fn value_done(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key }) => *key = None,
        Some(Frame::Seq { next, .. }) => *next += 1,
        None => {}
    }
}

/// The dotted path of the value about to start (`None` for the document itself).
fn path_of(stack: &[Frame]) -> Option<String> {
    if stack.is_empty() {
        return None;
    }
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Map { key: Some((k, _)) } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Map { key: None } => {}
            Frame::Seq { next } => path.push_str(&format!("[{next}]")),
        }
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# a comment
readers:
  - id: events
    path: a.jsonl
    options: {header: 'true'}
  - {id: other, path: b.csv}
feature_set:
  name: fs
  features:
    - {name: f1, from_column: x}
    - name: f2
      transformation:
        window: {definitions: ['7 days']}
";

    #[test]
    fn paths_have_lines() {
        let l = YamlLines::index(YAML);
        assert_eq!(l.line_of("readers"), Some(2));
        assert_eq!(l.line_of("readers[0]"), Some(3));
        assert_eq!(l.line_of("readers[0].path"), Some(4));
        assert_eq!(l.line_of("readers[0].options.header"), Some(5));
        assert_eq!(l.line_of("readers[0].options.nope"), Some(5), "nearest enclosing path");
        assert_eq!(l.line_of("readers[1].path"), Some(6));
        assert_eq!(l.line_of("feature_set.name"), Some(8));
        assert_eq!(l.line_of("feature_set.features[0].from_column"), Some(10));
        assert_eq!(l.line_of("feature_set.features[1].name"), Some(11));
        assert_eq!(
            l.line_of("feature_set.features[1].transformation.window.definitions[0]"),
            Some(13)
        );
        assert_eq!(l.line_of("writers"), None);
    }

    #[test]
    fn issues_get_lines() {
        let mut issues = SpecIssues::default();
        issues.push("feature_set.features[0].from_column", "column `x` not found");
        issues.push("nowhere", "no line");
        YamlLines::index(YAML).locate(&mut issues);
        assert_eq!(
            issues.to_string(),
            "invalid pipeline spec (2 problems):\n  - feature_set.features[0].from_column (line 10): column `x` not found\n  - nowhere: no line"
        );
    }
}
