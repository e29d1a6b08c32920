"""The stages of a run, and the context they share (docs/ARCHITECTURE.md, "A run").

    context    Context: run folder, data, device, seeds, timing, the eval.json writer, the batch builder
    search     the shared search stage (a method's strategy searches a cell)
    retrain    a genotype retrained from scratch
    evaluate   the retrained model or the searched supernet on the test sets; the report
    standard   search → retrain → evaluate, the run of darts, fairdarts, ssf, pcdarts and gdas
    bbn        the two-branch search of HLS (Tang, 2024), evaluated without retraining
    imbnas     IMB-NAS (Yao, 2024): a supernet trained once, adapted, evolved, then retrained

Which run a method has is declared in ltnas.methods; ltnas.pipeline dispatches to it.
"""
