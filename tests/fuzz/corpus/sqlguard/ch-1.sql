SELECT count() FROM system.numbers LIMIT 10 -- ch
;