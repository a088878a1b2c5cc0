ALTER TABLE `tenants` ADD `max_active_jobs` integer;--> statement-breakpoint
ALTER TABLE `tenants` ADD `max_adapters` integer;--> statement-breakpoint
ALTER TABLE `tenants` ADD `monthly_tokens` integer;