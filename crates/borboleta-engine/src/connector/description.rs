//! What a connector tells `explain` and `describe` about itself.

/// What `explain` and `describe` say about a connector.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectorDescription {
    /// Butterfree's name of its kind (`File Reader`, `Historical Feature Store Writer`), as in
    /// Butterfree's feature set metadata.
    pub kind: String,
    /// Where it reads or writes, as the spec declares it (the metadata's `location`).
    pub location: String,
    /// One line for `explain` (resolved paths, topics, servers; never a secret).
    pub detail: String,
}
