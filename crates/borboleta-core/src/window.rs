//! Window definitions (`"7 days"`, `"2 events"`) and their Butterfree names.

use std::fmt;

/// How a window frame is built (Butterfree's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// Range frame over the timestamp in whole epoch seconds: `[t - length, t]`, both ends inclusive.
    FixedWindows,
    /// The current row and the `n - 1` rows before it, ordered by timestamp.
    RowWindows,
    /// Time buckets aligned to the Unix epoch in UTC (aggregated feature sets only).
    RollingWindows,
}

impl WindowMode {
    /// The name used in output columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FixedWindows => "fixed_windows",
            Self::RowWindows => "row_windows",
            Self::RollingWindows => "rolling_windows",
        }
    }
}

/// Time units with a fixed length, in seconds (Butterfree's `ALLOWED_WINDOWS` without `year`).
pub const TIME_UNITS: &[(&str, i64)] = &[
    ("second", 1),
    ("seconds", 1),
    ("minute", 60),
    ("minutes", 60),
    ("hour", 3600),
    ("hours", 3600),
    ("day", 86_400),
    ("days", 86_400),
    ("week", 604_800),
    ("weeks", 604_800),
];

/// A parsed window definition such as `"7 days"` or `"3 events"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowDefinition {
    /// The definition as written.
    pub definition: String,
    /// The number before the unit.
    pub size: i64,
    /// The unit as written (kept for the column name).
    pub unit: String,
    /// The mode it is used with.
    pub mode: WindowMode,
}

impl WindowDefinition {
    /// Parses `"<n> <unit>"` for `mode`. Row windows accept any unit word (`events`, `rows`).
    pub fn parse(definition: &str, mode: WindowMode) -> Result<Self, String> {
        let mut parts = definition.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "window `{definition}` must be `<number> <unit>`, e.g. `7 days`"
            ));
        };
        let size: i64 = n
            .parse()
            .map_err(|_| format!("window `{definition}`: `{n}` is not a whole number"))?;
        if size <= 0 {
            return Err(format!("window `{definition}` must have a positive size"));
        }
        if mode != WindowMode::RowWindows {
            if matches!(unit, "year" | "years" | "month" | "months") {
                return Err(format!(
                    "window `{definition}`: `{unit}` has no fixed length; use days or weeks (e.g. `365 days`)"
                ));
            }
            if unit_seconds(unit).is_none() {
                let names = TIME_UNITS.iter().map(|(u, _)| *u);
                return Err(format!(
                    "window `{definition}`: unknown unit `{unit}`{}; expected second(s), minute(s), hour(s), day(s) or week(s)",
                    crate::error::hint(unit, names)
                ));
            }
        }
        Ok(Self {
            definition: definition.to_string(),
            size,
            unit: unit.to_string(),
            mode,
        })
    }

    /// Length in seconds (time units only).
    pub fn seconds(&self) -> Option<i64> {
        unit_seconds(&self.unit).map(|s| s * self.size)
    }

    /// Butterfree's window name: `over_<size>_<unit>_<mode>`.
    pub fn name(&self) -> String {
        format!("over_{}_{}_{}", self.size, self.unit, self.mode.as_str())
    }
}

impl fmt::Display for WindowDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.definition)
    }
}

/// Seconds in one `unit`, if it is a fixed-length time unit.
pub fn unit_seconds(unit: &str) -> Option<i64> {
    TIME_UNITS.iter().find(|(u, _)| *u == unit).map(|(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_butterfree() {
        let w = WindowDefinition::parse("2 minutes", WindowMode::FixedWindows).unwrap();
        assert_eq!(w.name(), "over_2_minutes_fixed_windows");
        assert_eq!(w.seconds(), Some(120));
        let w = WindowDefinition::parse("3 events", WindowMode::RowWindows).unwrap();
        assert_eq!(w.name(), "over_3_events_row_windows");
    }

    #[test]
    fn rejects_bad_definitions() {
        assert!(
            WindowDefinition::parse("7 daily", WindowMode::FixedWindows)
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            WindowDefinition::parse("-2 weeks", WindowMode::FixedWindows)
                .unwrap_err()
                .contains("positive")
        );
        assert!(WindowDefinition::parse("1.5 days", WindowMode::FixedWindows).is_err());
        assert!(
            WindowDefinition::parse("1 year", WindowMode::FixedWindows)
                .unwrap_err()
                .contains("no fixed length")
        );
    }
}
