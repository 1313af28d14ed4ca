/// Every error code Coffer answers with (the `code` of an error body, CONTRACT §3), each
/// documented once here with its meaning, and a constructor for each. A code belongs to one
/// ``CofferError/Kind``, which CofferHTTP turns into a status and the CLI into an exit code.
extension CofferError.Code {
    /// A request that is malformed in a way no more specific code names.
    public static let invalidInput = Self("invalid_input", .invalidInput)
    /// A request the HTTP layer refused before any route read it (a bad method, header or path).
    public static let invalidRequest = Self("invalid_request", .invalidInput)
    /// A request body that is not JSON, or not the JSON object the route expects.
    public static let invalidJSON = Self("invalid_json", .invalidInput)
    /// A field of the body with the wrong type or a value out of its range.
    public static let invalidField = Self("invalid_field", .invalidInput)
    /// A body field the route does not know (bodies are read strictly, so a typo is not ignored).
    public static let unknownField = Self("unknown_field", .invalidInput)
    /// An id of a space, stack, context or KMS key that is not 1 to 63 characters of a-z, 0-9 and '-'.
    public static let invalidID = Self("invalid_id", .invalidInput)
    /// A name that is empty, longer than 200 characters or holds control characters.
    public static let invalidName = Self("invalid_name", .invalidInput)
    /// A description longer than 10,000 characters or holding NUL.
    public static let invalidDescription = Self("invalid_description", .invalidInput)
    /// Labels that are too many, too long, empty or hold control characters.
    public static let invalidLabels = Self("invalid_labels", .invalidInput)
    /// A config element id (in the path or the body) that is not a valid environment variable name or file path.
    public static let invalidConfigID = Self("invalid_config_id", .invalidInput)
    /// A config value that cannot be stored as its type (NUL in an environment variable, bad base64 in a file).
    public static let invalidValue = Self("invalid_value", .invalidInput)
    /// An attachment priority that is not an integer from 0 to 1,000,000.
    public static let invalidPriority = Self("invalid_priority", .invalidInput)
    /// A history version in the path that is not a positive integer.
    public static let invalidVersion = Self("invalid_version", .invalidInput)
    /// A key version id that does not look like `database-v2` or `kek-v1`.
    public static let invalidKeyVersion = Self("invalid_key_version", .invalidInput)
    /// A page size that is not an integer from 1 to the route's maximum.
    public static let invalidLimit = Self("invalid_limit", .invalidInput)
    /// A page cursor this server did not issue, or one for another query.
    public static let invalidCursor = Self("invalid_cursor", .invalidInput)
    /// A list filter (such as an audit log filter) that is empty, too long or malformed.
    public static let invalidFilter = Self("invalid_filter", .invalidInput)
    /// A destructive request sent without its explicit confirmation.
    public static let confirmationRequired = Self("confirmation_required", .invalidInput)
    /// A KMS key algorithm Coffer does not offer.
    public static let invalidAlgorithm = Self("invalid_algorithm", .invalidInput)
    /// A KMS plaintext that is missing, not base64, or larger than allowed.
    public static let invalidPlaintext = Self("invalid_plaintext", .invalidInput)
    /// A KMS ciphertext that is not `coffer:v<version>:<base64>` as encrypt returned it.
    public static let invalidCiphertext = Self("invalid_ciphertext", .invalidInput)
    /// A KMS encryption context that is not base64 of at most 8 KiB.
    public static let invalidContext = Self("invalid_context", .invalidInput)
    /// A KMS request that mixes the fields of one item with `batch`.
    public static let invalidBatch = Self("invalid_batch", .invalidInput)
    /// A KMS `batch` with no item.
    public static let emptyBatch = Self("empty_batch", .invalidInput)
    /// A request to `/api/v1` without a bearer token.
    public static let missingToken = Self("missing_token", .unauthorized)
    /// A bearer token that is malformed, signed by an unknown key, or issued for another issuer or audience.
    public static let invalidToken = Self("invalid_token", .unauthorized)
    /// A bearer token past its expiry (or not yet valid).
    public static let tokenExpired = Self("token_expired", .unauthorized)
    /// A bearer token whose API key has been revoked.
    public static let tokenRevoked = Self("token_revoked", .unauthorized)
    /// A token request whose API key id or secret is wrong, or whose key is revoked.
    public static let invalidCredentials = Self("invalid_credentials", .unauthorized)
    /// Authentication failed for a reason no more specific code names.
    public static let unauthorized = Self("unauthorized", .unauthorized)
    /// An authenticated caller whose role or space does not allow the request.
    public static let forbidden = Self("forbidden", .forbidden)
    /// A role the caller may not grant: only the command line and admins of the root space
    /// grant `worker`, which reads every decrypted value through runtime config.
    public static let roleNotGrantable = Self("role_not_grantable", .forbidden)
    /// A space, stack, context, config element, API key, key version or job that does not exist in the caller's reach.
    public static let notFound = Self("not_found", .notFound)
    /// A KMS key name that does not exist in the caller's reach.
    public static let kmsKeyNotFound = Self("kms_key_not_found", .notFound)
    /// A method the route does not offer.
    public static let methodNotAllowed = Self("method_not_allowed", .notAllowed)
    /// A resource that already exists, or a change that conflicts with the resource's state.
    public static let conflict = Self("conflict", .conflict)
    /// A KMS operation on a key an admin has disabled.
    public static let kmsKeyDisabled = Self("kms_key_disabled", .conflict)
    /// A request body, value or batch over its size limit.
    public static let tooLarge = Self("too_large", .tooLarge)
    /// A request body that is not `application/json`.
    public static let unsupportedMediaType = Self("unsupported_media_type", .unsupportedMediaType)
    /// A well-formed request that refers to something that cannot be used.
    public static let unprocessable = Self("unprocessable", .unprocessable)
    /// A space named in the request that does not exist.
    public static let unknownSpace = Self("unknown_space", .unprocessable)
    /// A space move that would put a space under itself.
    public static let spaceCycle = Self("space_cycle", .unprocessable)
    /// A space move asked by an API key bound to that space.
    public static let cannotMoveSpace = Self("cannot_move_space", .unprocessable)
    /// A space deletion asked by an API key bound to that space, or of a space that still holds something.
    public static let cannotDeleteSpace = Self("cannot_delete_space", .unprocessable)
    /// An attachment of a context outside the stack's space and its ancestors.
    public static let contextOutOfReach = Self("context_out_of_reach", .unprocessable)
    /// A KMS ciphertext under a key version that does not exist.
    public static let unknownKeyVersion = Self("unknown_key_version", .unprocessable)
    /// A KMS ciphertext under a key version below the key's `min_decryption_version`.
    public static let keyVersionBelowMinimum = Self("key_version_below_minimum", .unprocessable)
    /// A `min_decryption_version` outside 1 to the key's latest version.
    public static let invalidMinDecryptionVersion = Self("invalid_min_decryption_version", .unprocessable)
    /// A KMS ciphertext that does not open under its key with the given context.
    public static let decryptionFailed = Self("decryption_failed", .unprocessable)
    /// A config write that would give a stack or context more elements than
    /// `COFFER_MAX_ELEMENTS_PER_OWNER` allows.
    public static let tooManyElements = Self("too_many_elements", .conflict)
    /// A token request over `COFFER_TOKEN_RATE_PER_ADDRESS` or `COFFER_TOKEN_RATE_PER_KEY`;
    /// `Retry-After` says when to ask again.
    public static let tooManyRequests = Self("too_many_requests", .tooManyRequests)
    /// Coffer cannot serve the request now (not ready, shutting down); retry later.
    public static let unavailable = Self("unavailable", .unavailable)
    /// The database is unreachable or did not answer in time; retry later.
    public static let databaseUnavailable = Self("database_unavailable", .unavailable)
    /// The database refuses writes (a standby, or a primary set read-only); retry later.
    public static let databaseReadOnly = Self("database_read_only", .unavailable)
    /// The database schema is older than this build: run `coffer migrate` first.
    public static let migrationsPending = Self("migrations_pending", .unavailable)
    /// The configured root key does not unwrap the stored key-encryption key.
    public static let rootKeyMismatch = Self("root_key_mismatch", .rootKeyMismatch)
    /// A stored key refers to a key-encryption key or data key version that is not there.
    public static let keyMissing = Self("key_missing", .internalFailure)
    /// A stored API key has a role this build does not know.
    public static let unknownRole = Self("unknown_role", .internalFailure)
    /// A stored value that does not open under its data key (tampered or corrupt); see the server log.
    public static let sealedValueUnreadable = Self("sealed_value_unreadable", .internalFailure)
    /// A failure Coffer did not expect; the detail is in the server log only.
    public static let internalError = Self("internal_error", .internalFailure)
}

extension CofferError {
    public static func invalidInput(_ message: String) -> CofferError { CofferError(.invalidInput, message) }
    public static func invalidRequest(_ message: String) -> CofferError { CofferError(.invalidRequest, message) }
    public static func invalidJSON(_ message: String) -> CofferError { CofferError(.invalidJSON, message) }
    public static func invalidField(_ message: String) -> CofferError { CofferError(.invalidField, message) }
    public static func unknownField(_ message: String) -> CofferError { CofferError(.unknownField, message) }
    public static func invalidID(_ message: String) -> CofferError { CofferError(.invalidID, message) }
    public static func invalidName(_ message: String) -> CofferError { CofferError(.invalidName, message) }
    public static func invalidDescription(_ message: String) -> CofferError { CofferError(.invalidDescription, message) }
    public static func invalidLabels(_ message: String) -> CofferError { CofferError(.invalidLabels, message) }
    public static func invalidConfigID(_ message: String) -> CofferError { CofferError(.invalidConfigID, message) }
    public static func invalidValue(_ message: String) -> CofferError { CofferError(.invalidValue, message) }
    public static func invalidPriority(_ message: String) -> CofferError { CofferError(.invalidPriority, message) }
    public static func invalidVersion(_ message: String) -> CofferError { CofferError(.invalidVersion, message) }
    public static func invalidKeyVersion(_ message: String) -> CofferError { CofferError(.invalidKeyVersion, message) }
    public static func invalidLimit(_ message: String) -> CofferError { CofferError(.invalidLimit, message) }
    public static func invalidCursor(_ message: String) -> CofferError { CofferError(.invalidCursor, message) }
    public static func invalidFilter(_ message: String) -> CofferError { CofferError(.invalidFilter, message) }
    public static func confirmationRequired(_ message: String) -> CofferError { CofferError(.confirmationRequired, message) }
    public static func invalidAlgorithm(_ message: String) -> CofferError { CofferError(.invalidAlgorithm, message) }
    public static func invalidPlaintext(_ message: String) -> CofferError { CofferError(.invalidPlaintext, message) }
    public static func invalidCiphertext(_ message: String) -> CofferError { CofferError(.invalidCiphertext, message) }
    public static func invalidContext(_ message: String) -> CofferError { CofferError(.invalidContext, message) }
    public static func invalidBatch(_ message: String) -> CofferError { CofferError(.invalidBatch, message) }
    public static func emptyBatch(_ message: String) -> CofferError { CofferError(.emptyBatch, message) }
    public static func missingToken(_ message: String) -> CofferError { CofferError(.missingToken, message) }
    public static func invalidToken(_ message: String) -> CofferError { CofferError(.invalidToken, message) }
    public static func tokenExpired(_ message: String) -> CofferError { CofferError(.tokenExpired, message) }
    public static func tokenRevoked(_ message: String) -> CofferError { CofferError(.tokenRevoked, message) }
    public static func invalidCredentials(_ message: String) -> CofferError { CofferError(.invalidCredentials, message) }
    public static func unauthorized(_ message: String) -> CofferError { CofferError(.unauthorized, message) }
    public static func forbidden(_ message: String) -> CofferError { CofferError(.forbidden, message) }
    public static func roleNotGrantable(_ message: String) -> CofferError { CofferError(.roleNotGrantable, message) }
    public static func notFound(_ message: String) -> CofferError { CofferError(.notFound, message) }
    public static func kmsKeyNotFound(_ message: String) -> CofferError { CofferError(.kmsKeyNotFound, message) }
    public static func methodNotAllowed(_ message: String) -> CofferError { CofferError(.methodNotAllowed, message) }
    public static func conflict(_ message: String) -> CofferError { CofferError(.conflict, message) }
    public static func kmsKeyDisabled(_ message: String) -> CofferError { CofferError(.kmsKeyDisabled, message) }
    public static func tooLarge(_ message: String) -> CofferError { CofferError(.tooLarge, message) }
    public static func unsupportedMediaType(_ message: String) -> CofferError { CofferError(.unsupportedMediaType, message) }
    public static func unprocessable(_ message: String) -> CofferError { CofferError(.unprocessable, message) }
    public static func unknownSpace(_ message: String) -> CofferError { CofferError(.unknownSpace, message) }
    public static func spaceCycle(_ message: String) -> CofferError { CofferError(.spaceCycle, message) }
    public static func cannotMoveSpace(_ message: String) -> CofferError { CofferError(.cannotMoveSpace, message) }
    public static func cannotDeleteSpace(_ message: String) -> CofferError { CofferError(.cannotDeleteSpace, message) }
    public static func contextOutOfReach(_ message: String) -> CofferError { CofferError(.contextOutOfReach, message) }
    public static func unknownKeyVersion(_ message: String) -> CofferError { CofferError(.unknownKeyVersion, message) }
    public static func keyVersionBelowMinimum(_ message: String) -> CofferError { CofferError(.keyVersionBelowMinimum, message) }
    public static func invalidMinDecryptionVersion(_ message: String) -> CofferError { CofferError(.invalidMinDecryptionVersion, message) }
    public static func decryptionFailed(_ message: String) -> CofferError { CofferError(.decryptionFailed, message) }
    public static func tooManyElements(_ message: String) -> CofferError { CofferError(.tooManyElements, message) }
    public static func tooManyRequests(_ message: String, retryAfter: Int) -> CofferError { CofferError(.tooManyRequests, message, retryAfter: retryAfter) }
    public static func unavailable(_ message: String) -> CofferError { CofferError(.unavailable, message) }
    public static func databaseUnavailable(_ message: String) -> CofferError { CofferError(.databaseUnavailable, message) }
    public static func databaseReadOnly(_ message: String) -> CofferError { CofferError(.databaseReadOnly, message) }
    public static func migrationsPending(_ message: String) -> CofferError { CofferError(.migrationsPending, message) }
    public static func rootKeyMismatch(_ message: String) -> CofferError { CofferError(.rootKeyMismatch, message) }
    public static func keyMissing(_ message: String) -> CofferError { CofferError(.keyMissing, message) }
    public static func unknownRole(_ message: String) -> CofferError { CofferError(.unknownRole, message) }
    public static func sealedValueUnreadable(_ message: String) -> CofferError { CofferError(.sealedValueUnreadable, message) }
    public static func internalError(_ message: String) -> CofferError { CofferError(.internalError, message) }
}
