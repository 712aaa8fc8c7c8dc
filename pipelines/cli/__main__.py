from mixline.pipelines.cli import main

main()
