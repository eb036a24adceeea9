/**
 * Who is acting. Chat surfaces build it from the principal they resolved on the server for this
 * request (never from a payload); the CLI acts as an admin named after the OS user.
 */
export interface Actor {
  /** The principal behind the action; null for the CLI and for the loop. */
  principalId: string | null;
  /** How the audit trail names the actor: an email, `cli:<user>` or `system`. */
  label: string;
  isAdmin: boolean;
}

/** The background loop and start-up work. */
export const SYSTEM: Actor = { principalId: null, label: 'system', isAdmin: true };

/** An admin at the `elevate` command line. */
export const cliActor = (user: string): Actor => ({ principalId: null, label: `cli:${user}`, isAdmin: true });

/** A principal acting through a chat surface. */
export const principalActor = (p: { id: string; email: string; isAdmin: boolean }): Actor => ({
  principalId: p.id,
  label: p.email,
  isAdmin: p.isAdmin,
});
