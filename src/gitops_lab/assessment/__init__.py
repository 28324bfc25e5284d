"""Assessments of what a learner wrote: checked against the repository it sits in."""
