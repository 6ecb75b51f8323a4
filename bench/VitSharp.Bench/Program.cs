namespace VitSharp.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.WriteLine("usage: VitSharp.Bench <gemm|vit> ...");
        return 0;
    }
}
