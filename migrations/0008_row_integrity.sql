-- Rows that decide who may do what carry an authentication code: HMAC-SHA256 of their
-- deciding fields under a data key of purpose `integrity` (RowIntegrity in CofferCore), so
-- a row inserted, edited or copied by someone with only database access is refused, not
-- trusted. This adds the columns to API keys and to named KMS keys. `coffer migrate` then creates the integrity
-- key and, that one time, gives the keys that exist a code; a row without one found later
-- was not written by Coffer.
ALTER TABLE api_keys ADD COLUMN mac bytea, ADD COLUMN mac_version integer;
ALTER TABLE kms_keys ADD COLUMN mac bytea, ADD COLUMN mac_version integer;
