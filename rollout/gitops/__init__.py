"""GitOps: sync a Git folder into the cluster (GitSource), and write a failed release's revert to Git.

`source` reconciles a GitSource (fetch with `repo`, render with `render`, apply with `apply`,
compare with `desired`); `revert` writes the revert commit; `writer` connects the revert to a
release (its GitSource or `spec.git.url`, its Secret, its target).
"""
