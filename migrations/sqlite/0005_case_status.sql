-- Where each case stands as last planned (JSON: looked after, the IRO, sibling group, parent's
-- case), for checks across cases on the dashboard.
ALTER TABLE cases ADD COLUMN status TEXT;
