CREATE TABLE "step_ups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"principal_id" uuid NOT NULL,
	"purpose" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"opened_at" timestamp with time zone,
	"state" text,
	"nonce" text,
	"code_verifier" text,
	"finished_at" timestamp with time zone,
	"verified_at" timestamp with time zone,
	"auth_time" timestamp with time zone,
	"refusal" text,
	"used_at" timestamp with time zone,
	CONSTRAINT "step_ups_tokenHash_unique" UNIQUE("token_hash"),
	CONSTRAINT "step_ups_state_unique" UNIQUE("state")
);
--> statement-breakpoint
ALTER TABLE "step_ups" ADD CONSTRAINT "step_ups_principal_id_principals_id_fk" FOREIGN KEY ("principal_id") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "step_ups_principal_id_verified_at_index" ON "step_ups" USING btree ("principal_id","verified_at");