-- Coffer schema, version 3: key lifecycle (CONTRACT §5). A generation counter that every
-- key change bumps, so replicas reload their keyring within seconds, and the jobs that
-- re-encrypt the values of a data key version before its material is erased.

CREATE TABLE key_generation (
    id          integer     PRIMARY KEY CHECK (id = 1),
    generation  bigint      NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO key_generation (id, generation) VALUES (1, 1);

-- One job per data key version being destroyed. A replica runs a job only while it holds
-- the job's advisory lock on its own connection, so two replicas never run one job, and
-- a killed replica releases it with its connection.
CREATE TABLE key_destruction_jobs (
    id           bigserial   PRIMARY KEY,
    purpose      text        NOT NULL,
    version      integer     NOT NULL,
    state        text        NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    total        bigint      NOT NULL DEFAULT 0,
    done         bigint      NOT NULL DEFAULT 0,
    error        text        NOT NULL DEFAULT '',
    requested_by text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    FOREIGN KEY (purpose, version) REFERENCES data_encryption_keys (purpose, version)
);
CREATE UNIQUE INDEX key_destruction_jobs_one_running ON key_destruction_jobs (purpose, version) WHERE state = 'running';
