CREATE TABLE "access_review_items" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"review_id" uuid NOT NULL,
	"principal_id" uuid NOT NULL,
	"role_id" uuid NOT NULL,
	"reviewer_ids" jsonb NOT NULL,
	"last_activated_at" timestamp with time zone,
	"activations90d" integer DEFAULT 0 NOT NULL,
	"decision" text,
	"justification" text DEFAULT '' NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"outcome" text
);
--> statement-breakpoint
CREATE TABLE "access_reviews" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text,
	"role_names" jsonb NOT NULL,
	"reviewers" text NOT NULL,
	"reviewer_emails" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"duration_minutes" integer NOT NULL,
	"recurrence" text,
	"unreviewed" text DEFAULT 'keep' NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"start_at" timestamp with time zone NOT NULL,
	"end_at" timestamp with time zone NOT NULL,
	"reminded_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"created_by" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "access_review_items" ADD CONSTRAINT "access_review_items_review_id_access_reviews_id_fk" FOREIGN KEY ("review_id") REFERENCES "public"."access_reviews"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "access_review_items" ADD CONSTRAINT "access_review_items_principal_id_principals_id_fk" FOREIGN KEY ("principal_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "access_review_items" ADD CONSTRAINT "access_review_items_role_id_roles_id_fk" FOREIGN KEY ("role_id") REFERENCES "public"."roles"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "access_review_items_review_id_index" ON "access_review_items" USING btree ("review_id");--> statement-breakpoint
CREATE INDEX "access_reviews_status_end_at_index" ON "access_reviews" USING btree ("status","end_at");--> statement-breakpoint
CREATE UNIQUE INDEX "access_reviews_one_running" ON "access_reviews" USING btree ("name") WHERE status = 'running' and name is not null;