-- The role setting requireMfaOnActivation is now requireMfa (issue 7's name). Stored settings are
-- not re-parsed when read, so rename the key in place: a role that asked for MFA keeps asking.
UPDATE roles
SET settings = (settings - 'requireMfaOnActivation')
  || jsonb_build_object('requireMfa', coalesce(settings -> 'requireMfaOnActivation', 'false'::jsonb))
WHERE settings ? 'requireMfaOnActivation';
