namespace VitSharp.Training;

/// <summary>The loss or the gradient norm became NaN or infinite; the run stopped and kept its last good checkpoint.</summary>
public sealed class TrainingDivergedException(string message) : VitSharpException(message);
