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

impl YamlLines {
    /// Indexes `text`; a document that does not parse gives what was indexed before the error.
    pub fn index(text: &str) -> Self {
        let mut lines = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for event in Parser::new_from_str(text) {
            let Ok((event, span)) = event else { break };
            let line = span.start.line();
            match event {
                Event::Scalar(..) | Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..) => {
                    if let Some(Frame::Map { key: key @ None }) = stack.last_mut() {
                        // A key: its value is recorded when it starts.
                        let text = match &event {
                            Event::Scalar(s, ..) => s.to_string(),
                            _ => "?".to_string(),
                        };
                        *key = Some((text, line));
                        if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
                            stack.push(frame_for(&event));
                        }
                        continue;
                    }
                    if let Some(path) = path_of(&stack) {
                        let at = match stack.last() {
                            Some(Frame::Map { key: Some((_, l)) }) => *l,
                            _ => line,
                        };
                        lines.entry(path).or_insert(at);
                    }
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
