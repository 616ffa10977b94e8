"""RAPO++ for CineRL: relation-graph retrieval (stage 1), the SSPO closed loop (stage 2) and the
feedback data they produce (stage 3).

    from cinerl.prompting.rapo.graph import load_graph
    from cinerl.prompting.rapo.optimise import optimise_prompt
    from cinerl.prompting.rapo.retrieval import Retriever
    result = optimise_prompt("a knight rides through a misty forest", Retriever(load_graph()))

Modules: graph (CSV -> networkx graph + cached MiniLM embeddings), encoder (one prompt's MiniLM
embedding without SentenceTransformer.encode's per-call overhead), retrieval (top-k places, their
neighbours, threshold, rule-based merge), optimise (merge/refactor/rewrite, LLM or rules), growth
(top-quartile run prompts join the graph), film (the `make --prompt-opt rapo` hook), physics and
vision (SSPO's evidence), sspo (the loop), export (SFT/DPO JSONL), llm_bridge (the lazy link to
cinerl.llm.structured).
"""
