-- The hourly storage run (api/src/usage/storage.ts) finds the adapters with days to bill by this index.
CREATE INDEX `adapters_storage_billed_idx` ON `adapters` (`storage_billed_until`);
