-- Coffer schema, version 2: the full domain of CONTRACT §3. Spaces carry a description,
-- config elements keep every version (sealed exactly like the current value, under the
-- same associated data), and an audit trail records every change, token and
-- runtime-config read in the transaction of the action.

ALTER TABLE spaces ADD COLUMN description text NOT NULL DEFAULT '';
ALTER TABLE spaces ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX spaces_parent ON spaces (parent);

-- A revoked API key outlives its space: the audit trail names it, and replicas keep
-- refusing its tokens. Live keys still block deleting their space (checked by Coffer).
ALTER TABLE api_keys DROP CONSTRAINT api_keys_space_fkey;
CREATE INDEX api_keys_space ON api_keys (space);
CREATE INDEX api_keys_revoked_at ON api_keys (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE INDEX config_owners_space ON config_owners (space, kind);
CREATE INDEX config_owners_labels ON config_owners USING gin (labels);

-- The current version of each element, and who wrote it.
ALTER TABLE config_elements ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version > 0);
ALTER TABLE config_elements ADD COLUMN author text NOT NULL DEFAULT '';

-- Every version of every element, the current one included. sealed_value is sealed
-- under the `database` data key named by its header, with the associated data of the
-- element (coffer/config/<owner uuid>/<configId>), so a version restores without
-- re-encryption and the recovery walk-through opens history too. Versions outlive a
-- deleted element (restore brings it back) but not a deleted stack or context.
CREATE TABLE config_element_versions (
    owner_id      uuid        NOT NULL REFERENCES config_owners (uuid) ON DELETE CASCADE,
    config_id     text        NOT NULL,
    version       integer     NOT NULL CHECK (version > 0),
    type          text        NOT NULL CHECK (type IN ('ENVIRONMENT_VARIABLE', 'FILE_MOUNT')),
    write_only    boolean     NOT NULL,
    sealed_value  bytea       NOT NULL,
    dek_version   integer     NOT NULL,
    checksum      text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    author        text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner_id, config_id, version)
);
CREATE INDEX config_element_versions_dek_version ON config_element_versions (dek_version);

INSERT INTO config_element_versions
    (owner_id, config_id, version, type, write_only, sealed_value, dek_version, checksum, description, author, created_at)
SELECT owner_id, config_id, 1, type, write_only, sealed_value, dek_version, checksum, description, '', updated_at
FROM config_elements;

-- Who did what to which resource, when, under which request, and how it ended. Never a
-- value, a secret or a token.
CREATE TABLE audit_events (
    id           bigserial   PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    actor_space  text,
    action       text        NOT NULL,
    resource     text        NOT NULL,
    space        text,
    request_id   text        NOT NULL DEFAULT '',
    outcome      text        NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
    detail       text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_space_id ON audit_events (space, id DESC);
CREATE INDEX audit_events_actor_id ON audit_events (actor, id DESC);
