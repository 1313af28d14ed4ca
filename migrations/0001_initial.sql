-- Coffer schema, version 1. The tables that hold key material and values follow
-- CONTRACT §4 (storage and key hierarchy); their named columns are a recovery contract.

CREATE TABLE key_encryption_keys (
    version      integer     PRIMARY KEY CHECK (version > 0),
    root_type    text        NOT NULL CHECK (root_type IN ('rsa', 'kms')),
    root_key_id  text        NOT NULL,
    wrapped_key  bytea,
    state        text        NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- At most one active key-encryption key.
CREATE UNIQUE INDEX key_encryption_keys_one_active ON key_encryption_keys (state) WHERE state = 'active';

CREATE TABLE data_encryption_keys (
    purpose      text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    kek_version  integer     NOT NULL REFERENCES key_encryption_keys (version),
    sealed_key   bytea,
    state        text        NOT NULL CHECK (state IN ('active', 'retired', 'destroyed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (purpose, version)
);
-- At most one active data key per purpose.
CREATE UNIQUE INDEX data_encryption_keys_one_active ON data_encryption_keys (purpose) WHERE state = 'active';

CREATE TABLE spaces (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    parent      text        REFERENCES spaces (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO spaces (id, name, parent) VALUES ('root', 'root', NULL);

CREATE TABLE api_keys (
    id           text        PRIMARY KEY,
    name         text        NOT NULL,
    space        text        NOT NULL REFERENCES spaces (id),
    role         text        NOT NULL CHECK (role IN ('read', 'write', 'admin', 'worker')),
    secret_hash  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Stacks and contexts share one table: they carry the same fields and both own config
-- elements. `uuid` is the immutable internal identity bound into each value's
-- associated data; `id` is the user's slug.
CREATE TABLE config_owners (
    uuid         uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('stack', 'context')),
    id           text        NOT NULL,
    name         text        NOT NULL,
    space        text        NOT NULL REFERENCES spaces (id),
    labels       text[]      NOT NULL DEFAULT '{}',
    description  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, id)
);

CREATE TABLE config_elements (
    owner_id      uuid        NOT NULL REFERENCES config_owners (uuid) ON DELETE CASCADE,
    config_id     text        NOT NULL,
    type          text        NOT NULL CHECK (type IN ('ENVIRONMENT_VARIABLE', 'FILE_MOUNT')),
    write_only    boolean     NOT NULL,
    sealed_value  bytea       NOT NULL,
    -- The database data key version of sealed_value, as its header names it; kept in a
    -- column so key lifecycle jobs can find the values of a version by index.
    dek_version   integer     NOT NULL,
    checksum      text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, config_id)
);
CREATE INDEX config_elements_dek_version ON config_elements (dek_version);

CREATE TABLE stack_context_attachments (
    stack_uuid    uuid        NOT NULL REFERENCES config_owners (uuid) ON DELETE CASCADE,
    context_uuid  uuid        NOT NULL REFERENCES config_owners (uuid) ON DELETE CASCADE,
    priority      integer     NOT NULL CHECK (priority >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stack_uuid, context_uuid)
);
CREATE INDEX stack_context_attachments_context ON stack_context_attachments (context_uuid);
