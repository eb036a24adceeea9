/** Every table, for drizzle's typed queries and for drizzle-kit. */
export * from '../audit/audit.sql.ts';
export * from '../chat/chat-message.sql.ts';
export * from '../chat/teams/teams-conversation.sql.ts';
export * from '../elevation/activation.sql.ts';
export * from '../elevation/alert.sql.ts';
export * from '../elevation/notification.sql.ts';
export * from '../elevation/principal.sql.ts';
export * from '../elevation/reconcile.sql.ts';
export * from '../elevation/review.sql.ts';
export * from '../elevation/role.sql.ts';
export * from '../elevation/step-up.sql.ts';
