import { describe, expect, test } from 'vitest';
import { defaultRoleSettings } from '../../../src/elevation/role-settings.ts';
import {
  formatTime,
  orderProblems,
  type Policy,
  parsePolicy,
  renderPolicy,
  settingsForFile,
} from '../../../src/policy/policy-file.ts';

const EXAMPLE = `
admins: [Ana@Example.com]
roles:
  - name: prod-db-admin
    description: Admin on the production database
    scope: prod/db
    provider: { type: none }
    settings:
      maxDuration: 2h
      minDuration: 1m
      defaultDuration: 1h
      requireJustification: true
      requireTicket: false
      ticketPattern: "^INC[0-9]+$"
      requireApproval: true
      approvers: [bo@example.com, cy@example.com]
      approvalsRequired: 1
      approvalTimeout: 24h
      allowCustomStart: true
      allowExtension: true
  - name: read-only
eligibility:
  - { principal: dee@example.com, role: prod-db-admin, end: 2027-12-31 }
  - { principal: eve@example.com, role: read-only, start: 2027-01-01, justification: on call }
activeAssignments: []
`;

function parsed(text: string): Policy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) throw new Error(result.problems.join('\n'));
  return result.policy;
}

function problems(text: string): string[] {
  const result = parsePolicy(text, 'policy.yaml');
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

describe('parsePolicy', () => {
  test('reads the documented example: minutes, PIM defaults, lower-cased emails', () => {
    const policy = parsed(EXAMPLE);
    expect(policy.admins).toEqual(['ana@example.com']);
    const [admin, readOnly] = policy.roles ?? [];
    expect(admin).toMatchObject({
      name: 'prod-db-admin',
      scope: 'prod/db',
      provider: { type: 'none' },
      settings: {
        maxDuration: 120,
        minDuration: 1,
        defaultDuration: 60,
        approvalTimeout: 1440,
        approvers: ['bo@example.com', 'cy@example.com'],
        ticketPattern: '^INC[0-9]+$',
        // not in the file: PIM's default
        allowPermanentActiveAssignment: false,
      },
    });
    expect(readOnly).toEqual({
      name: 'read-only',
      description: '',
      scope: '',
      provider: { type: 'none' },
      settings: defaultRoleSettings(),
    });
    expect(policy.activeAssignments).toEqual([]);
  });

  test('a bare end date holds through that whole day; a bare start begins it', () => {
    const [dee, eve] = parsed(EXAMPLE).eligibility ?? [];
    expect(dee).toEqual({
      email: 'dee@example.com',
      roleName: 'prod-db-admin',
      endAt: new Date('2028-01-01T00:00:00Z'),
    });
    expect(eve).toEqual({
      email: 'eve@example.com',
      roleName: 'read-only',
      startAt: new Date('2027-01-01T00:00:00Z'),
      endAt: null,
      justification: 'on call',
    });
    expect(formatTime(new Date('2028-01-01T00:00:00Z'), 'end')).toBe('2027-12-31');
    expect(formatTime(new Date('2027-01-01T00:00:00Z'), 'start')).toBe('2027-01-01');
  });

  test('zoned timestamps are exact', () => {
    const policy = parsed(`eligibility:
  - { principal: a@example.com, role: r, start: "2027-01-01T08:30:00+02:00", end: 2027-01-02T17:00:00Z }`);
    expect(policy.eligibility?.[0]).toMatchObject({
      startAt: new Date('2027-01-01T06:30:00Z'),
      endAt: new Date('2027-01-02T17:00:00Z'),
    });
    expect(formatTime(new Date('2027-01-02T17:00:00Z'), 'end')).toBe('2027-01-02T17:00:00Z');
  });

  test('a section the file leaves out is not managed', () => {
    expect(parsed('admins: [ana@example.com]')).toEqual({ admins: ['ana@example.com'] });
  });

  test('every problem gets one line with its path, in the order of the file', () => {
    const lines = problems(`
admin: [ana@example.com]
roles:
  - name: ok-role
  - name: other
    scop: x
  - name: broken
    settings:
      maxDuration: 9x
      maxDuraton: 2h
      approvers: [not-an-email]
      ticketPattern: "["
  - name: Bad_Name
  - name: ok-role
  - name: too-long
    settings: { maxDuration: 30h, approvalsRequired: 2, approvers: [bo@example.com] }
eligibility:
  - { principal: nope, role: ok-role, end: 2027-02-30 }
  - { role: ok-role, start: tomorrow }
  - { principal: x@example.com, role: ok-role, end: "2027-12-31T10:00:00" }
  - { principal: x@example.com, role: ok-role }
activeAssignments: { principal: x@example.com }
`);
    expect(lines).toEqual([
      'admin: is not a known key (did you mean admins?)',
      'roles[1].scop: is not a known key (did you mean scope?)',
      'roles[2].settings.maxDuration: "9x" is not a duration (use 30m, 8h, 2d or ISO 8601)',
      'roles[2].settings.maxDuraton: is not a role setting (did you mean maxDuration?)',
      'roles[2].settings.approvers[0]: "not-an-email" is not an email address',
      'roles[2].settings.ticketPattern: is not a valid regular expression',
      'roles[3].name: "Bad_Name" must be lower-case letters, digits and dashes (at most 63)',
      'roles[4]: role "ok-role" is listed twice (also roles[0])',
      'roles[5].settings.maxDuration: may be at most 24h (set allowLongActivation to allow up to 7d)',
      'roles[5].settings.approvalsRequired: is 2 but only 1 approver(s) are named',
      'eligibility[0].principal: "nope" is not an email address',
      'eligibility[0].end: "2027-02-30" is not a date (use 2027-12-31 or 2027-12-31T17:00:00Z)',
      'eligibility[1].principal: is required',
      'eligibility[1].start: "tomorrow" is not a date (use 2027-12-31 or 2027-12-31T17:00:00Z)',
      'eligibility[2].end: "2027-12-31T10:00:00" is not a date (use 2027-12-31 or 2027-12-31T17:00:00Z)',
      'eligibility[3]: x@example.com → ok-role is listed twice (also eligibility[2])',
      'activeAssignments: must be a list (write [] for none)',
    ]);
  });

  test('what did parse is kept for the database checks, with every declared role name and unread section', () => {
    const result = parsePolicy(
      `roles:
  - name: good
  - name: bad
    settings: { maxDuration: 9x }
eligibility:
  - { principal: a@example.com, role: bad }
  - { principal: nope, role: good }
`,
      'policy.yaml',
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.partial?.roleNames).toEqual(['good', 'bad']);
    expect(result.partial?.roles?.map((r) => r.name)).toEqual(['good']);
    expect(result.partial?.eligibility?.map((e) => e.roleName)).toEqual(['bad']);
    // Sections with an entry that did not parse: what they want kept is not fully known.
    expect(result.partial?.incomplete).toEqual(['roles', 'eligibility']);
  });

  test('reconciliation settings: report only by default, revoke and standing holders when set', () => {
    const policy = parsed(
      'roles: [{ name: r }, { name: s, settings: { revokeUnmanagedGrants: true, standingHolders: [etl_service, U0ANA] } }]',
    );
    expect(policy.roles?.[0]?.settings).toMatchObject({ revokeUnmanagedGrants: false, standingHolders: [] });
    expect(policy.roles?.[1]?.settings).toMatchObject({
      revokeUnmanagedGrants: true,
      standingHolders: ['etl_service', 'U0ANA'],
    });
    expect(problems('roles: [{ name: r, settings: { standingHolders: "" } }]')[0]).toMatch(
      /^roles\[0\]\.settings\.standingHolders: /,
    );
  });

  test('only minActiveBeforeDeactivation may be zero', () => {
    const policy = parsed('roles: [{ name: r, settings: { minActiveBeforeDeactivation: 0m } }]');
    expect(policy.roles?.[0]?.settings.minActiveBeforeDeactivation).toBe(0);
    expect(problems('roles: [{ name: r, settings: { minDuration: 0m, maxDuration: 90 } }]')).toEqual([
      'roles[0].settings.minDuration: "0m" is not a duration (use 30m, 8h, 2d or ISO 8601)',
      'roles[0].settings.maxDuration: 90 is not a duration (use 30m, 8h, 2d or ISO 8601)',
    ]);
  });

  test('YAML syntax errors name the file, line and column', () => {
    expect(problems('roles: [\n  - name: x\n')[0]).toMatch(/^policy\.yaml:\d+:\d+: /);
    expect(problems('a: 1\na: 2\n')).toEqual(['policy.yaml:2:1: Map keys must be unique']);
  });

  test('an empty file or one that is not a mapping is refused', () => {
    expect(problems('')).toEqual([
      'policy.yaml: is empty; write at least one of admins, principals, roles, eligibility, activeAssignments, alerts, reviews',
    ]);
    expect(problems('- ana@example.com')).toEqual([
      'policy.yaml: must be a mapping with admins, principals, roles, eligibility, activeAssignments, alerts, reviews',
    ]);
  });
});

describe('orderProblems', () => {
  test('file-level first, then by section and entry, stable within an entry', () => {
    expect(
      orderProblems([
        'eligibility[1].role: b',
        'roles[0].name: a',
        'eligibility[0].end: c',
        'eligibility[1].end: d',
        'nonsense: is not a known key',
      ]),
    ).toEqual([
      'nonsense: is not a known key',
      'roles[0].name: a',
      'eligibility[0].end: c',
      'eligibility[1].role: b',
      'eligibility[1].end: d',
    ]);
  });
});

describe('renderPolicy', () => {
  test('writes only the settings that differ from what omitting them gives', () => {
    const settings = { ...defaultRoleSettings(), maxDuration: 120, minDuration: 90, defaultDuration: 90 };
    // defaultDuration 90 is what the schema derives from min 90 / max 120, so it can go.
    expect(settingsForFile(settings)).toEqual({ maxDuration: '2h', minDuration: '1h30m' });
    expect(settingsForFile(defaultRoleSettings())).toEqual({});
  });

  test('what it writes parses back to the same policy', () => {
    const policy = parsed(EXAMPLE);
    const text = renderPolicy(
      {
        admins: policy.admins ?? [],
        principals: [{ email: 'carol@example.com', accounts: { postgres: 'carol_dba', slack: 'U123' } }],
        roles: policy.roles ?? [],
        eligibility: policy.eligibility ?? [],
        activeAssignments: [
          {
            email: 'fay@example.com',
            roleName: 'read-only',
            startAt: new Date('2027-03-01T10:15:00Z'),
            endAt: new Date('2027-03-02T10:15:00Z'),
            justification: 'migration',
          },
        ],
      },
      'Elevate policy',
    );
    expect(text).toContain('- { principal: dee@example.com, role: prod-db-admin, end: 2027-12-31 }');
    expect(text).toContain('maxDuration: 2h');
    expect(parsed(text)).toEqual({
      ...policy,
      principals: [{ email: 'carol@example.com', accounts: { postgres: 'carol_dba', slack: 'U123' } }],
      activeAssignments: [
        {
          email: 'fay@example.com',
          roleName: 'read-only',
          startAt: new Date('2027-03-01T10:15:00Z'),
          endAt: new Date('2027-03-02T10:15:00Z'),
          justification: 'migration',
        },
      ],
    });
  });
});

describe('alerts', () => {
  test('thresholds are read with durations, the rest at their defaults, and written back where they differ', () => {
    const policy = parsed(`
alerts:
  frequentActivation: { activations: 3, within: 12h }
  staleEligibility: { after: 60d }
  unmanagedGrant: { enabled: false }
`);
    expect(policy.alerts?.frequentActivation).toEqual({ enabled: true, activations: 3, within: 720 });
    expect(policy.alerts?.staleEligibility.after).toBe(60 * 1440);
    expect(policy.alerts?.unmanagedGrant.enabled).toBe(false);
    expect(policy.alerts?.tooManyActive).toEqual({ enabled: true, holders: 3 });
    const text = renderPolicy(
      {
        admins: [],
        principals: [],
        roles: [],
        eligibility: [],
        activeAssignments: [],
        alerts: policy.alerts,
      },
      'test',
    );
    expect(parsed(text).alerts).toEqual(policy.alerts);
    expect(text).toContain('within: 12h');
    expect(text).not.toContain('tooManyActive');
  });

  test('problems name the alert and key, in the order of the file', () => {
    expect(
      problems(`admins: []
alerts:
  frequentActivation: { activations: 1, within: soon }
  staleEligibilty: { after: 30d }
  tooManyActive: { holder: 2 }
`),
    ).toEqual([
      'alerts.frequentActivation.within: "soon" is not a duration (use 30m, 8h, 2d or ISO 8601)',
      'alerts.frequentActivation.activations: Too small: expected number to be >=2',
      'alerts.staleEligibilty: is not an alert (did you mean staleEligibility?)',
      'alerts.tooManyActive.holder: is not a known key (did you mean holders?)',
    ]);
  });

  test('the admin channel: a Slack channel id and a Teams conversation id, written back when set', () => {
    const policy = parsed(`
alerts:
  channel: { slack: C0123ABCD, teams: '19:abc123def@thread.tacv2' }
`);
    expect(policy.alerts?.channel).toEqual({ slack: 'C0123ABCD', teams: '19:abc123def@thread.tacv2' });
    const text = renderPolicy(
      {
        admins: [],
        principals: [],
        roles: [],
        eligibility: [],
        activeAssignments: [],
        alerts: policy.alerts,
      },
      'test',
    );
    expect(parsed(text).alerts?.channel).toEqual(policy.alerts?.channel);
    expect(parsed('alerts: { staleEligibility: { after: 60d } }').alerts?.channel).toEqual({});
  });

  test('a channel name, a thread or a personal chat is refused with what to write instead', () => {
    expect(
      problems(`admins: []
alerts:
  channel: { slack: '#security', teams: '19:abc@thread.tacv2;messageid=1712', email: x }
`),
    ).toEqual([
      `alerts.channel.slack: "#security" is not a Slack channel id: write the id (C0123ABCD, at the bottom of the channel's details), not the name`,
      `alerts.channel.teams: "19:abc@thread.tacv2;messageid=1712" is not a Teams channel or group chat id: write 19:…@thread.tacv2 (from the channel's "Get link", decoded, without ;messageid=)`,
      'alerts.channel.email: is not a known key (known: slack, teams)',
    ]);
    expect(problems(`admins: []\nalerts:\n  chanel: { slack: C0123ABCD }\n`)).toEqual([
      'alerts.chanel: is not an alert (did you mean channel?)',
    ]);
  });
});
