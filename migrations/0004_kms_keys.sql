-- Coffer schema, version 4: Coffer as a KMS for applications. Named keys live in a space
-- (global names, like stack ids); each version's material is random (16 or 32 bytes),
-- sealed under the key-encryption key named by kek_version in the sealed format of every
-- Coffer value, with the associated data coffer/kms-key/<key uuid>/<version>. No route
-- returns it. Deleting a key deletes every version's material (crypto-shredding: complete
-- once PostgreSQL has vacuumed the dead rows and backups taken before the deletion expire).

CREATE TABLE kms_keys (
    uuid                    uuid        PRIMARY KEY,
    name                    text        NOT NULL UNIQUE,
    space                   text        NOT NULL REFERENCES spaces (id),
    algorithm               text        NOT NULL CHECK (algorithm IN ('aes-256-gcm', 'aes-128-gcm')),
    description             text        NOT NULL DEFAULT '',
    latest_version          integer     NOT NULL CHECK (latest_version > 0),
    min_decryption_version  integer     NOT NULL DEFAULT 1
        CHECK (min_decryption_version > 0 AND min_decryption_version <= latest_version),
    enabled                 boolean     NOT NULL DEFAULT true,
    created_by              text        NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kms_keys_space ON kms_keys (space);

CREATE TABLE kms_key_versions (
    key_uuid     uuid        NOT NULL REFERENCES kms_keys (uuid) ON DELETE CASCADE,
    version      integer     NOT NULL CHECK (version > 0),
    kek_version  integer     NOT NULL REFERENCES key_encryption_keys (version),
    sealed_key   bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_uuid, version)
);
CREATE INDEX kms_key_versions_kek ON kms_key_versions (kek_version);
