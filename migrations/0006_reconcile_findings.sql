CREATE TABLE "reconcile_findings" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"role_id" uuid NOT NULL,
	"account" text NOT NULL,
	"found_at" timestamp with time zone NOT NULL,
	"revoke_attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	CONSTRAINT "reconcile_findings_roleId_account_unique" UNIQUE("role_id","account")
);
--> statement-breakpoint
CREATE TABLE "reconcile_leases" (
	"role_id" uuid PRIMARY KEY NOT NULL,
	"held_until" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "reconcile_findings" ADD CONSTRAINT "reconcile_findings_role_id_roles_id_fk" FOREIGN KEY ("role_id") REFERENCES "public"."roles"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "reconcile_leases" ADD CONSTRAINT "reconcile_leases_role_id_roles_id_fk" FOREIGN KEY ("role_id") REFERENCES "public"."roles"("id") ON DELETE no action ON UPDATE no action;