-- Adapter storage is billed per UTC day (api/src/usage/storage.ts): each adapter remembers how far it is
-- billed. Adapters kept before this migration are billed from the start of the day it runs, not back to
-- their creation: days before storage was billed stay unbilled.
ALTER TABLE `adapters` ADD `storage_billed_until` integer;
--> statement-breakpoint
UPDATE `adapters` SET `storage_billed_until` = max(`created_at`, CAST(strftime('%s', 'now', 'start of day') AS INTEGER));
--> statement-breakpoint
-- The monthly token total counts tokens only: storage (byte-hours) is not a token and has no monthly quota.
DROP TRIGGER `usage_monthly_add`;
--> statement-breakpoint
CREATE TRIGGER `usage_monthly_add` AFTER INSERT ON `usage_events`
WHEN NEW.`kind` IN ('training_tokens', 'prompt_tokens', 'completion_tokens')
BEGIN
  INSERT INTO `usage_monthly` (`tenant_id`, `month`, `quantity`)
  VALUES (NEW.`tenant_id`, strftime('%Y-%m', NEW.`created_at`, 'unixepoch'), NEW.`quantity`)
  ON CONFLICT (`tenant_id`, `month`) DO UPDATE SET `quantity` = `quantity` + excluded.`quantity`;
END;
