"""The topic run's stages, in pipeline order: ingest, embed, topics, pools, prompts, generate,
postprocess, evaluate. Each is one module, or one package when it has several parts, holding its
pure logic (plain functions and callable classes over Arrow tables) and its runner (`run_<stage>`:
reads upstream outputs from the run directory, computes, writes the stage's folder) side by side.
"""
