import CofferStore

// The records and handles of CofferStore that the layers above CofferCore name in their
// own code. CofferHTTP reaches them through CofferCore and never imports CofferStore, so
// no route can open a session, run a repository's operation or see a statement.

/// The database a replica runs on (for start-up, readiness and pool metrics).
public typealias Database = CofferStore.Database
/// A database failure, reduced to what callers act on.
public typealias StoreError = CofferStore.StoreError
/// Stacks and contexts.
public typealias OwnerKind = CofferStore.OwnerKind
public typealias OwnerRecord = CofferStore.OwnerRecord
/// Spaces.
public typealias SpaceRecord = CofferStore.SpaceRecord
/// API keys (only a hash of the secret).
public typealias APIKeyRecord = CofferStore.APIKeyRecord
/// The audit trail.
public typealias AuditRecord = CofferStore.AuditRecord
public typealias AuditFilter = CofferStore.AuditFilter
/// Named KMS keys (metadata; never material).
public typealias KMSKeyRecord = CofferStore.KMSKeyRecord
/// Key destruction jobs.
public typealias DestructionJobRecord = CofferStore.DestructionJobRecord
/// States of key versions and of destruction jobs.
public typealias KeyState = CofferStore.KeyState
public typealias JobState = CofferStore.JobState
