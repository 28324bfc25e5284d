"""The lab's forge: a Git server with pull requests, reviews, commit statuses and
webhooks (issue 20). Gitea's API in gitea.py; seeding a lab on it in seed.py."""
