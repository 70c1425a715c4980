"""Day 2: the post-deploy validation Job, bucket jobs, the DR read path."""
