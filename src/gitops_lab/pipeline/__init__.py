"""The platform pipeline's stages, run by the platform repository's templates (ml-platform-pipelines).

`python -m gitops_lab.pipeline STAGE` runs one stage on a checkout of the lab
repository; stages hand each other files under the artifacts folder.
"""
