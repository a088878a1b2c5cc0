ALTER TABLE `checkpoints` ADD `format` integer;--> statement-breakpoint
ALTER TABLE `runners` ADD `checkpoint_formats` text;